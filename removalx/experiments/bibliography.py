"""BibTeX of the papers behind removalx's recipes, explainers, stages, metrics and statistics.

:data:`ENTRIES` holds one BibTeX entry per paper, written from the papers' bibliographic data
(title, authors, venue, year; arXiv identifiers where a paper has no archival venue removalx
could confirm; a comment above an entry names any field that could not be confirmed).
:data:`RECIPES`, :data:`EXPLAINERS`, :data:`STAGE_PLUGINS`, :data:`METRICS` and
:data:`STATISTICS` map a built-in name to the keys of the papers it follows, :data:`OPTIONS` an
option that switches a plugin to another paper's method, :data:`MODELS` a model spec;
:func:`references_for` collects the keys of what an experiment used and :func:`bibtex` renders
them (the report's ``references.bib``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "ENTRIES",
    "EXPLAINERS",
    "METRICS",
    "MODELS",
    "OPTIONS",
    "PRESETS",
    "RECIPES",
    "STAGE_PLUGINS",
    "STATISTICS",
    "bibtex",
    "references_for",
]

#: The framework paper: every removal pipeline is one of its seven-stage recipes.
FRAMEWORK = "gayamorey2024revex"

#: BibTeX entries keyed by citation key.
ENTRIES: dict[str, str] = {
    FRAMEWORK: """@misc{gayamorey2024revex,
  title         = {{REVEX}: A Unified Framework for Removal-Based Explainable Artificial Intelligence in Video},
  author        = {Gaya-Morey, F. Xavier and Buades-Rubio, Jose M. and MacKenzie, I. Scott and Manresa-Yee, Cristina},
  year          = {2024},
  eprint        = {2401.11796},
  archiveprefix = {arXiv},
  primaryclass  = {cs.CV},
  note          = {First version titled ``Local Agnostic Video Explanations: a Study on the Applicability of Removal-Based Explanations to Video''}
}""",
    "uchiyama2022aosa": """@misc{uchiyama2022aosa,
  title         = {Visually explaining {3D-CNN} predictions for video classification with an adaptive occlusion sensitivity analysis},
  author        = {Uchiyama, Tomoki and Sogi, Naoya and Niinuma, Koichiro and Fukui, Kazuhiro},
  year          = {2022},
  eprint        = {2207.12859},
  archiveprefix = {arXiv},
  primaryclass  = {cs.CV}
}""",
    "li2021step": """@article{li2021step,
  title   = {Spatio-Temporal Perturbations for Video Attribution},
  author  = {Li, Zhenqiang and Wang, Weimin and Li, Zuoyue and Huang, Yifei and Sato, Yoichi},
  journal = {IEEE Transactions on Circuits and Systems for Video Technology},
  year    = {2021},
  doi     = {10.1109/TCSVT.2021.3081761}
}""",
    "li2021wacv": """@inproceedings{li2021wacv,
  title     = {Towards Visually Explaining Video Understanding Networks With Perturbation},
  author    = {Li, Zhenqiang and Wang, Weimin and Li, Zuoyue and Huang, Yifei and Sato, Yoichi},
  booktitle = {Proceedings of the IEEE/CVF Winter Conference on Applications of Computer Vision (WACV)},
  year      = {2021},
  pages     = {1120--1129}
}""",
    "li2020study": """@misc{li2020study,
  title         = {A Comprehensive Study on Visual Explanations for Spatio-temporal Networks},
  author        = {Li, Zhenqiang and Wang, Weimin and Li, Zuoyue and Huang, Yifei and Sato, Yoichi},
  year          = {2020},
  eprint        = {2005.00375},
  archiveprefix = {arXiv},
  primaryclass  = {cs.CV},
  note          = {arXiv version 1; later versions of 2005.00375 are titled ``Towards Visually Explaining Video Understanding Networks with Perturbation'' (WACV 2021)}
}""",
    "ribeiro2016lime": """@inproceedings{ribeiro2016lime,
  title     = {``Why Should {I} Trust You?'': Explaining the Predictions of Any Classifier},
  author    = {Ribeiro, Marco Tulio and Singh, Sameer and Guestrin, Carlos},
  booktitle = {Proceedings of the 22nd ACM SIGKDD International Conference on Knowledge Discovery and Data Mining},
  year      = {2016},
  pages     = {1135--1144},
  doi       = {10.1145/2939672.2939778}
}""",
    "lundberg2017shap": """@inproceedings{lundberg2017shap,
  title     = {A Unified Approach to Interpreting Model Predictions},
  author    = {Lundberg, Scott M. and Lee, Su-In},
  booktitle = {Advances in Neural Information Processing Systems (NIPS)},
  year      = {2017}
}""",
    "petsiuk2018rise": """@inproceedings{petsiuk2018rise,
  title     = {{RISE}: Randomized Input Sampling for Explanation of Black-box Models},
  author    = {Petsiuk, Vitali and Das, Abir and Saenko, Kate},
  booktitle = {British Machine Vision Conference (BMVC)},
  year      = {2018}
}""",
    "musco2025leverage": """@inproceedings{musco2025leverage,
  title     = {Provably Accurate Shapley Value Estimation via Leverage Score Sampling},
  author    = {Musco, Christopher and Witter, R. Teal},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year      = {2025}
}""",
    "sundararajan2017ig": """@inproceedings{sundararajan2017ig,
  title     = {Axiomatic Attribution for Deep Networks},
  author    = {Sundararajan, Mukund and Taly, Ankur and Yan, Qiqi},
  booktitle = {Proceedings of the 34th International Conference on Machine Learning (ICML)},
  year      = {2017}
}""",
    "smilkov2017smoothgrad": """@misc{smilkov2017smoothgrad,
  title         = {{SmoothGrad}: removing noise by adding noise},
  author        = {Smilkov, Daniel and Thorat, Nikhil and Kim, Been and Vi{\\'e}gas, Fernanda and Wattenberg, Martin},
  year          = {2017},
  eprint        = {1706.03825},
  archiveprefix = {arXiv},
  primaryclass  = {cs.LG}
}""",
    "selvaraju2017gradcam": """@inproceedings{selvaraju2017gradcam,
  title     = {{Grad-CAM}: Visual Explanations from Deep Networks via Gradient-based Localization},
  author    = {Selvaraju, Ramprasaath R. and Cogswell, Michael and Das, Abhishek and Vedantam, Ramakrishna and Parikh, Devi and Batra, Dhruv},
  booktitle = {Proceedings of the IEEE International Conference on Computer Vision (ICCV)},
  year      = {2017},
  pages     = {618--626}
}""",
    "zhang2018eb": """@article{zhang2018eb,
  title   = {Top-Down Neural Attention by Excitation Backprop},
  author  = {Zhang, Jianming and Bargal, Sarah Adel and Lin, Zhe and Brandt, Jonathan and Shen, Xiaohui and Sclaroff, Stan},
  journal = {International Journal of Computer Vision},
  volume  = {126},
  number  = {10},
  pages   = {1084--1102},
  year    = {2018},
  doi     = {10.1007/s11263-017-1059-x}
}""",
    "bargal2018ebr": """@inproceedings{bargal2018ebr,
  title     = {Excitation Backprop for {RNNs}},
  author    = {Bargal, Sarah Adel and Zunino, Andrea and Kim, Donghyun and Zhang, Jianming and Murino, Vittorio and Sclaroff, Stan},
  booktitle = {Proceedings of the IEEE Conference on Computer Vision and Pattern Recognition (CVPR)},
  year      = {2018}
}""",
    "stergiou2019tubes": """@inproceedings{stergiou2019tubes,
  title     = {Saliency Tubes: Visual Explanations for Spatio-Temporal Convolutions},
  author    = {Stergiou, Alexandros and Kapidis, Georgios and Kalliatakis, Grigorios and Chrysoulas, Christos and Veltkamp, Remco and Poppe, Ronald},
  booktitle = {IEEE International Conference on Image Processing (ICIP)},
  year      = {2019},
  doi       = {10.1109/ICIP.2019.8803153}
}""",
    "kapishnikov2019xrai": """@inproceedings{kapishnikov2019xrai,
  title     = {{XRAI}: Better Attributions Through Regions},
  author    = {Kapishnikov, Andrei and Bolukbasi, Tolga and Vi{\\'e}gas, Fernanda and Terry, Michael},
  booktitle = {Proceedings of the IEEE/CVF International Conference on Computer Vision (ICCV)},
  year      = {2019}
}""",
    "xu2020blurig": """@inproceedings{xu2020blurig,
  title     = {Attribution in Scale and Space},
  author    = {Xu, Shawn and Venugopalan, Subhashini and Sundararajan, Mukund},
  booktitle = {Proceedings of the IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},
  year      = {2020},
  doi       = {10.1109/CVPR42600.2020.00970}
}""",
    "hooker2019roar": """@inproceedings{hooker2019roar,
  title     = {A Benchmark for Interpretability Methods in Deep Neural Networks},
  author    = {Hooker, Sara and Erhan, Dumitru and Kindermans, Pieter-Jan and Kim, Been},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  year      = {2019},
  pages     = {9737--9748}
}""",
    "fong2019extremal": """@inproceedings{fong2019extremal,
  title     = {Understanding Deep Networks via Extremal Perturbations and Smooth Masks},
  author    = {Fong, Ruth and Patrick, Mandela and Vedaldi, Andrea},
  booktitle = {Proceedings of the IEEE/CVF International Conference on Computer Vision (ICCV)},
  year      = {2019}
}""",
    "simonyan2014saliency": """@inproceedings{simonyan2014saliency,
  title     = {Deep Inside Convolutional Networks: Visualising Image Classification Models and Saliency Maps},
  author    = {Simonyan, Karen and Vedaldi, Andrea and Zisserman, Andrew},
  booktitle = {International Conference on Learning Representations (ICLR), Workshop Track},
  year      = {2014}
}""",
    "dabkowski2017saliency": """@inproceedings{dabkowski2017saliency,
  title     = {Real Time Image Saliency for Black Box Classifiers},
  author    = {Dabkowski, Piotr and Gal, Yarin},
  booktitle = {Advances in Neural Information Processing Systems (NIPS)},
  year      = {2017}
}""",
    "zintgraf2017pda": """@inproceedings{zintgraf2017pda,
  title     = {Visualizing Deep Neural Network Decisions: Prediction Difference Analysis},
  author    = {Zintgraf, Luisa M. and Cohen, Taco S. and Adel, Tameem and Welling, Max},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year      = {2017}
}""",
    # Publisher as in the standard record; no source for it was found in this check.
    "efron1993bootstrap": """@book{efron1993bootstrap,
  title     = {An Introduction to the Bootstrap},
  author    = {Efron, Bradley and Tibshirani, Robert J.},
  publisher = {Chapman \\& Hall},
  year      = {1993}
}""",
    "wilcoxon1945": """@article{wilcoxon1945,
  title   = {Individual Comparisons by Ranking Methods},
  author  = {Wilcoxon, Frank},
  journal = {Biometrics Bulletin},
  volume  = {1},
  number  = {6},
  pages   = {80--83},
  year    = {1945}
}""",
    "holm1979": """@article{holm1979,
  title   = {A Simple Sequentially Rejective Multiple Test Procedure},
  author  = {Holm, Sture},
  journal = {Scandinavian Journal of Statistics},
  volume  = {6},
  number  = {2},
  pages   = {65--70},
  year    = {1979}
}""",
    # -- sanity checks (randomisation metrics) ----------------------------------------------------
    "adebayo2018sanity": """@inproceedings{adebayo2018sanity,
  title     = {Sanity Checks for Saliency Maps},
  author    = {Adebayo, Julius and Gilmer, Justin and Muelly, Michael and Goodfellow, Ian and Hardt, Moritz and Kim, Been},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  year      = {2018}
}""",
    # arXiv form: no archival venue of this version could be confirmed (a revised version is
    # "A Fresh Look at Sanity Checks for Saliency Maps", arXiv 2405.02383).
    "hedstrom2024sanity": """@misc{hedstrom2024sanity,
  title         = {Sanity Checks Revisited: An Exploration to Repair the Model Parameter Randomisation Test},
  author        = {Hedstr{\\"o}m, Anna and Weber, Leander and Lapuschkin, Sebastian and H{\\"o}hne, Marina M.-C.},
  year          = {2024},
  eprint        = {2401.06465},
  archiveprefix = {arXiv}
}""",
    "sixt2020lie": """@inproceedings{sixt2020lie,
  title     = {When Explanations Lie: Why Many Modified {BP} Attributions Fail},
  author    = {Sixt, Leon and Granz, Maximilian and Landgraf, Tim},
  booktitle = {Proceedings of the 37th International Conference on Machine Learning (ICML)},
  series    = {Proceedings of Machine Learning Research},
  volume    = {119},
  pages     = {9046--9057},
  year      = {2020}
}""",
    # -- axiomatic, complexity and faithfulness metrics ------------------------------------------
    "bhatt2020evaluating": """@inproceedings{bhatt2020evaluating,
  title     = {Evaluating and Aggregating Feature-based Model Explanations},
  author    = {Bhatt, Umang and Weller, Adrian and Moura, Jos{\\'e} M. F.},
  booktitle = {Proceedings of the Twenty-Ninth International Joint Conference on Artificial Intelligence (IJCAI)},
  pages     = {3016--3022},
  year      = {2020},
  doi       = {10.24963/ijcai.2020/417}
}""",
    # The book chapter's pages were not confirmed; the DOI identifies it.
    "kindermans2019unreliability": """@incollection{kindermans2019unreliability,
  title     = {The (Un)reliability of Saliency Methods},
  author    = {Kindermans, Pieter-Jan and Hooker, Sara and Adebayo, Julius and Alber, Maximilian and Sch{\\"u}tt, Kristof T. and D{\\"a}hne, Sven and Erhan, Dumitru and Kim, Been},
  booktitle = {Explainable {AI}: Interpreting, Explaining and Visualizing Deep Learning},
  series    = {Lecture Notes in Computer Science},
  volume    = {11700},
  publisher = {Springer},
  year      = {2019},
  doi       = {10.1007/978-3-030-28954-6_14}
}""",
    "chalasani2020concise": """@inproceedings{chalasani2020concise,
  title     = {Concise Explanations of Neural Networks using Adversarial Training},
  author    = {Chalasani, Prasad and Chen, Jiefeng and Chowdhury, Amrita Roy and Wu, Xi and Jha, Somesh},
  booktitle = {Proceedings of the 37th International Conference on Machine Learning (ICML)},
  series    = {Proceedings of Machine Learning Research},
  volume    = {119},
  pages     = {1383--1391},
  year      = {2020}
}""",
    # arXiv form: no archival venue could be confirmed.
    "nguyen2020quantitative": """@misc{nguyen2020quantitative,
  title         = {On Quantitative Aspects of Model Interpretability},
  author        = {Nguyen, An-phi and Mart{\\'i}nez, Mar{\\'i}a Rodr{\\'i}guez},
  year          = {2020},
  eprint        = {2007.07584},
  archiveprefix = {arXiv},
  primaryclass  = {cs.LG}
}""",
    "ancona2018towards": """@inproceedings{ancona2018towards,
  title     = {Towards better understanding of gradient-based attribution methods for Deep Neural Networks},
  author    = {Ancona, Marco and Ceolini, Enea and {\\"O}ztireli, Cengiz and Gross, Markus},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year      = {2018}
}""",
    "yeh2019infidelity": """@inproceedings{yeh2019infidelity,
  title     = {On the (In)fidelity and Sensitivity of Explanations},
  author    = {Yeh, Chih-Kuan and Hsieh, Cheng-Yu and Suggala, Arun Sai and Inouye, David I. and Ravikumar, Pradeep},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  pages     = {10967--10978},
  year      = {2019}
}""",
    # arXiv form: no archival venue could be confirmed (the module cites an ICLR 2020 workshop).
    "rieger2020irof": """@misc{rieger2020irof,
  title         = {{IROF}: a low resource evaluation metric for explanation methods},
  author        = {Rieger, Laura and Hansen, Lars Kai},
  year          = {2020},
  eprint        = {2003.08747},
  archiveprefix = {arXiv}
}""",
    "rong2022road": """@inproceedings{rong2022road,
  title     = {A Consistent and Efficient Evaluation Strategy for Attribution Methods},
  author    = {Rong, Yao and Leemann, Tobias and Borisov, Vadim and Kasneci, Gjergji and Kasneci, Enkelejda},
  booktitle = {Proceedings of the 39th International Conference on Machine Learning (ICML)},
  series    = {Proceedings of Machine Learning Research},
  volume    = {162},
  year      = {2022}
}""",
    "hedstrom2023quantus": """@article{hedstrom2023quantus,
  title   = {Quantus: An Explainable {AI} Toolkit for Responsible Evaluation of Neural Network Explanations and Beyond},
  author  = {Hedstr{\\"o}m, Anna and Weber, Leander and Krakowczyk, Daniel and Bareeva, Dilyara and Motzkus, Franz and Samek, Wojciech and Lapuschkin, Sebastian and H{\\"o}hne, Marina M.-C.},
  journal = {Journal of Machine Learning Research},
  volume  = {24},
  number  = {34},
  pages   = {1--11},
  year    = {2023}
}""",
    # -- robustness metrics ----------------------------------------------------------------------
    # arXiv form: presented at the 2018 ICML Workshop on Human Interpretability (WHI), no proceedings.
    "alvarezmelis2018robustness": """@misc{alvarezmelis2018robustness,
  title         = {On the Robustness of Interpretability Methods},
  author        = {Alvarez-Melis, David and Jaakkola, Tommi S.},
  year          = {2018},
  eprint        = {1806.08049},
  archiveprefix = {arXiv},
  note          = {2018 ICML Workshop on Human Interpretability in Machine Learning (WHI)}
}""",
    # arXiv form: no archival venue could be confirmed.
    "agarwal2022stability": """@misc{agarwal2022stability,
  title         = {Rethinking Stability for Attribution-based Explanations},
  author        = {Agarwal, Chirag and Johnson, Nari and Pawelczyk, Martin and Krishna, Satyapriya and Saxena, Eshika and Zitnik, Marinka and Lakkaraju, Himabindu},
  year          = {2022},
  eprint        = {2203.06877},
  archiveprefix = {arXiv},
  primaryclass  = {cs.LG}
}""",
    # -- class activation map recipes ------------------------------------------------------------
    "wang2020scorecam": """@inproceedings{wang2020scorecam,
  title     = {{Score-CAM}: Score-Weighted Visual Explanations for Convolutional Neural Networks},
  author    = {Wang, Haofan and Wang, Zifan and Du, Mengnan and Yang, Fan and Zhang, Zijian and Ding, Sirui and Mardziel, Piotr and Hu, Xia},
  booktitle = {Proceedings of the IEEE/CVF Conference on Computer Vision and Pattern Recognition Workshops (CVPRW)},
  pages     = {111--119},
  year      = {2020},
  doi       = {10.1109/CVPRW50498.2020.00020}
}""",
    # The pages were not confirmed.
    "desai2020ablationcam": """@inproceedings{desai2020ablationcam,
  title     = {{Ablation-CAM}: Visual Explanations for Deep Convolutional Network via Gradient-free Localization},
  author    = {Desai, Saurabh and Ramaswamy, Harish G.},
  booktitle = {Proceedings of the IEEE/CVF Winter Conference on Applications of Computer Vision (WACV)},
  year      = {2020}
}""",
    "chattopadhay2018gradcampp": """@inproceedings{chattopadhay2018gradcampp,
  title     = {{Grad-CAM++}: Generalized Gradient-Based Visual Explanations for Deep Convolutional Networks},
  author    = {Chattopadhay, Aditya and Sarkar, Anirban and Howlader, Prantik and Balasubramanian, Vineeth N.},
  booktitle = {IEEE Winter Conference on Applications of Computer Vision (WACV)},
  pages     = {839--847},
  year      = {2018}
}""",
    "jiang2021layercam": """@article{jiang2021layercam,
  title   = {{LayerCAM}: Exploring Hierarchical Class Activation Maps for Localization},
  author  = {Jiang, Peng-Tao and Zhang, Chang-Bin and Hou, Qibin and Cheng, Ming-Ming and Wei, Yunchao},
  journal = {IEEE Transactions on Image Processing},
  volume  = {30},
  pages   = {5875--5888},
  year    = {2021},
  doi     = {10.1109/TIP.2021.3089943}
}""",
    # -- statistics ------------------------------------------------------------------------------
    "efron1987bca": """@article{efron1987bca,
  title   = {Better Bootstrap Confidence Intervals},
  author  = {Efron, Bradley},
  journal = {Journal of the American Statistical Association},
  volume  = {82},
  number  = {397},
  pages   = {171--185},
  year    = {1987}
}""",
    # Volume, number and pages are the standard record; no source for them was found in this check.
    "benjamini1995fdr": """@article{benjamini1995fdr,
  title   = {Controlling the False Discovery Rate: A Practical and Powerful Approach to Multiple Testing},
  author  = {Benjamini, Yoav and Hochberg, Yosef},
  journal = {Journal of the Royal Statistical Society: Series B (Methodological)},
  volume  = {57},
  number  = {1},
  pages   = {289--300},
  year    = {1995}
}""",
    # Edition and publisher are the standard record; no source for them was found in this check.
    "cohen1988power": """@book{cohen1988power,
  title     = {Statistical Power Analysis for the Behavioral Sciences},
  author    = {Cohen, Jacob},
  edition   = {2nd},
  publisher = {Lawrence Erlbaum Associates},
  year      = {1988}
}""",
    "lakens2013effect": """@article{lakens2013effect,
  title   = {Calculating and reporting effect sizes to facilitate cumulative science: a practical primer for t-tests and {ANOVAs}},
  author  = {Lakens, Dani{\\"e}l},
  journal = {Frontiers in Psychology},
  volume  = {4},
  pages   = {863},
  year    = {2013},
  doi     = {10.3389/fpsyg.2013.00863}
}""",
}

_STEP = ("li2021step",)
_REMOVAL = (FRAMEWORK,)
_AOSA = ("uchiyama2022aosa",)

#: Built-in recipe -> the papers it reproduces (its ``reference:`` line).
RECIPES: dict[str, tuple[str, ...]] = {
    "aosa": _AOSA,
    "aosa_approx": _AOSA,
    "aosa_cs": (*_AOSA, "zintgraf2017pda"),
    "aosa_sgl": _AOSA,
    "aosa_sgl_approx": _AOSA,
    "blur_ig": (*_STEP, "xu2020blurig"),
    "contrastive_eb": ("zhang2018eb",),
    "eb_r": ("bargal2018ebr", "li2020study"),
    "ep2d_sync": ("li2020study", "li2021wacv"),
    "ep2d_unsync": ("li2020study", "li2021wacv"),
    "ep3d": ("li2021wacv", *_STEP),
    "ep3d_evenly": ("li2021wacv",),
    "ep3d_gauss1": ("li2021wacv", "li2020study"),
    "ep3d_gauss2": ("li2021wacv", "li2020study"),
    "ep3d_gauss3": ("li2021wacv", "li2020study"),
    "ep3d_min_ratio": (*_STEP, "li2021wacv"),
    "excitation_backprop": ("zhang2018eb", *_STEP),
    "grad_cam": ("selvaraju2017gradcam", *_STEP),
    "grad_cam_step": _STEP,
    "gradient": (*_STEP, "simonyan2014saliency"),
    "gradient_x_input": _STEP,
    "ig": (*_STEP, "sundararajan2017ig"),
    "kernelshap3d": (*_REMOVAL, "lundberg2017shap"),
    "leverage_shap3d": ("musco2025leverage", "lundberg2017shap"),
    "lime3d": (*_REMOVAL, "ribeiro2016lime"),
    "lime3d_flow": (*_REMOVAL, "ribeiro2016lime"),
    "loco_lv": _REMOVAL,
    "occlusion3d": _REMOVAL,
    "osa3d": _AOSA,
    "random": _STEP,
    "rise3d": (*_REMOVAL, "petsiuk2018rise"),
    "saliency_tubes": ("stergiou2019tubes", "li2020study"),
    "smoothgrad": (*_STEP, "smilkov2017smoothgrad"),
    "smoothgrad_sq": (*_STEP, "smilkov2017smoothgrad"),
    "step": _STEP,
    "step_logit": _STEP,
    "step_min_ratio": _STEP,
    "step_torchray": (*_STEP, "fong2019extremal"),
    "univariate_lv": _REMOVAL,
    "xrai3d": (*_STEP, "kapishnikov2019xrai"),
    "score_cam": ("wang2020scorecam",),
    "ablation_cam": ("desai2020ablationcam",),
    "grad_cam_pp": ("chattopadhay2018gradcampp", "selvaraju2017gradcam"),
    "layer_cam": ("jiang2021layercam",),
    "ep3d_eccvw": ("li2020study", "li2021wacv"),
    "ep3d_eccvw_shape": ("li2020study", "li2021wacv"),
}

#: Built-in whole-method explainer plugin -> papers (used for recipes that are not built in).
EXPLAINERS: dict[str, tuple[str, ...]] = {
    "blur_ig": ("xu2020blurig", *_STEP),
    "contrastive_eb": ("zhang2018eb",),
    "eb_r": ("bargal2018ebr",),
    "ep2d": ("li2020study",),
    "ep3d": ("li2021wacv", *_STEP),
    "excitation_backprop": ("zhang2018eb",),
    "grad_cam": ("selvaraju2017gradcam",),
    "gradient": ("simonyan2014saliency", *_STEP),
    "gradient_x_input": _STEP,
    "integrated_gradients": ("sundararajan2017ig",),
    "random": _STEP,
    "saliency_tubes": ("stergiou2019tubes",),
    "smoothgrad": ("smilkov2017smoothgrad",),
    "smoothgrad_sq": ("smilkov2017smoothgrad", *_STEP),
    "step": _STEP,
    "xrai": ("kapishnikov2019xrai",),
}

#: ``(stage, plugin)`` of a removal pipeline -> papers (beyond the framework paper every pipeline cites).
STAGE_PLUGINS: dict[tuple[str, str], tuple[str, ...]] = {
    ("feature_selection", "shapley_kernel"): ("lundberg2017shap",),
    ("feature_selection", "leverage_shapley"): ("musco2025leverage",),
    ("feature_selection", "cooccurrence"): _AOSA,
    ("segmentation", "soft_grid"): ("petsiuk2018rise",),
    ("segmentation", "flow_tubes"): _AOSA,
    ("removal", "conditional"): ("zintgraf2017pda",),
    ("behavior", "taylor"): _AOSA,
    ("summary", "linear"): ("ribeiro2016lime",),
    ("summary", "shapley"): ("lundberg2017shap",),
    ("summary", "mask_mean"): ("petsiuk2018rise",),
    ("summary", "aosa_map"): _AOSA,
    ("removal", "layer_ablation"): ("desai2020ablationcam",),
}

#: ``(section, plugin, option, value)`` of a resolved recipe -> papers: an explainer's or a stage's
#: option that switches it to another paper's method (``section`` is ``"explainer"`` or a stage;
#: ``value`` ``None`` matches any set, non-zero value).
OPTIONS: dict[tuple[str, str, str, Any], tuple[str, ...]] = {
    ("explainer", "grad_cam", "variant", "gradcam++"): ("chattopadhay2018gradcampp",),
    ("explainer", "grad_cam", "variant", "layercam"): ("jiang2021layercam",),
    ("explainer", "ep3d", "eccvw_weight", None): ("li2020study",),
    ("summary", "cam_weights", "weights", "score"): ("wang2020scorecam",),
    ("summary", "cam_weights", "weights", "relative_drop"): ("desai2020ablationcam",),
}

#: Model spec prefix -> papers whose model removalx reproduces (the ReLU CNN-LSTM of EB-R).
MODELS: dict[str, tuple[str, ...]] = {
    "cnn_lstm:": ("bargal2018ebr",),
    "zoo:cnn_lstm": ("bargal2018ebr",),
    "cnn_lstm_": ("bargal2018ebr",),
}

#: Built-in metric plugin -> the papers whose protocol it computes.
METRICS: dict[str, tuple[str, ...]] = {
    "deletion": ("petsiuk2018rise",),
    "insertion": ("petsiuk2018rise",),
    "minimal_mask": _REMOVAL,
    "min_preservation_ratio": (*_STEP, "li2021wacv"),
    "kar": ("hooker2019roar", *_STEP),
    "roar": ("hooker2019roar",),
    "saliency_metric": ("dabkowski2017saliency", "li2020study"),
    "spatial_pointing": ("zhang2018eb", "li2020study"),
    "temporal_pointing": ("li2020study",),
    "mprt": ("adebayo2018sanity",),
    "smprt": ("hedstrom2024sanity", "adebayo2018sanity"),
    "emprt": ("hedstrom2024sanity", "adebayo2018sanity"),
    "random_logit": ("sixt2020lie",),
    "completeness": ("sundararajan2017ig", "bhatt2020evaluating"),
    "input_invariance": ("kindermans2019unreliability",),
    "max_sensitivity": ("yeh2019infidelity",),
    "avg_sensitivity": ("yeh2019infidelity",),
    "local_lipschitz": ("alvarezmelis2018robustness",),
    "ris": ("agarwal2022stability",),
    "ros": ("agarwal2022stability",),
    "sparseness": ("chalasani2020concise",),
    "complexity": ("bhatt2020evaluating",),
    "effective_complexity": ("nguyen2020quantitative", "hedstrom2023quantus"),
    "faithfulness_correlation": ("bhatt2020evaluating",),
    "infidelity": ("yeh2019infidelity",),
    "sensitivity_n": ("ancona2018towards",),
    "irof": ("rieger2020irof",),
    "road": ("rong2022road",),
}

#: Preset of the insertion / deletion metrics -> the paper whose protocol it is.
PRESETS: dict[str, tuple[str, ...]] = {
    "removal": _REMOVAL,
    "step": _STEP,
    "aosa": _AOSA,
    "eccvw": ("li2020study",),
}

#: Statistics of the report -> papers: the BCa bootstrap CI, the paired tests and their effect size
#: (Cohen's d_z), the p-value corrections (``--correction holm | bh``), the alpha of ``compare``.
STATISTICS: dict[str, tuple[str, ...]] = {
    "bootstrap_ci": ("efron1993bootstrap", "efron1987bca"),
    "wilcoxon": ("wilcoxon1945",),
    "cohen_dz": ("cohen1988power", "lakens2013effect"),
    "holm": ("holm1979",),
    "bh": ("benjamini1995fdr",),
    "reliability_alpha": _STEP,
}


def _option_matches(wanted: Any, value: Any) -> bool:
    """Whether an option's ``value`` is the :data:`OPTIONS` row's (``None``: any set, non-zero value)."""
    if wanted is None:
        return value is not None and value is not False and value != 0
    return bool(value == wanted)


def _option_keys(recipe: Mapping[str, Any]) -> list[str]:
    """Keys of the :data:`OPTIONS` rows a resolved recipe's explainer or stages match."""
    keys: list[str] = []
    for (section, plugin, option, wanted), papers in OPTIONS.items():
        cfg = recipe.get(section)
        if (
            isinstance(cfg, Mapping)
            and str(cfg.get("name", "")) == plugin
            and option in cfg
            and _option_matches(wanted, cfg[option])
        ):
            keys.extend(papers)
    return keys


def _recipe_keys(recipe: Mapping[str, Any]) -> list[str]:
    """Keys of one resolved recipe: its built-in name's papers, else those of its plugins; then
    the papers of the options it sets (:data:`OPTIONS`, e.g. ``grad_cam`` with ``variant: layercam``)."""
    name = str(recipe.get("name", ""))
    explainer = recipe.get("explainer")
    if name in RECIPES:
        keys = list(RECIPES[name])
    elif isinstance(explainer, Mapping):
        keys = list(EXPLAINERS.get(str(explainer.get("name", "")), ()))
    else:
        keys = [FRAMEWORK]
        for stage, cfg in recipe.items():
            if isinstance(cfg, Mapping):
                keys.extend(STAGE_PLUGINS.get((stage, str(cfg.get("name", ""))), ()))
    return keys + _option_keys(recipe)


def _model_keys(model: str) -> list[str]:
    """Keys of the papers whose model ``model`` (a model spec) reproduces (:data:`MODELS`)."""
    return [k for prefix, papers in MODELS.items() if model.startswith(prefix) for k in papers]


def references_for(
    recipes: Iterable[Mapping[str, Any] | None],
    metrics: Iterable[str] = (),
    statistics: Iterable[str] = (),
    presets: Iterable[str] = (),
    models: Iterable[str] = (),
) -> list[str]:
    """Citation keys of the papers behind an experiment, first use first, no duplicates.

    Parameters
    ----------
    recipes : iterable of dict or None
        The resolved recipes of the methods (``None``: the random-map baseline, STEP journal
        Sec. IV-B).
    metrics : iterable of str
        Metric plugin names (not column labels).
    statistics : iterable of str
        Keys of :data:`STATISTICS` the experiment's tables use.
    presets : iterable of str
        Presets of the insertion / deletion metrics used (:data:`PRESETS`).
    models : iterable of str
        Model specs explained (:data:`MODELS`: e.g. ``cnn_lstm:vgg16`` cites EB-R's CNN-LSTM).
    """
    keys: list[str] = []
    for recipe in recipes:
        keys.extend(_STEP if recipe is None else _recipe_keys(recipe))
    for model in models:
        keys.extend(_model_keys(str(model)))
    for metric in metrics:
        keys.extend(METRICS.get(metric, ()))
    for preset in presets:
        keys.extend(PRESETS.get(preset, ()))
    for stat in statistics:
        keys.extend(STATISTICS.get(stat, ()))
    return list(dict.fromkeys(k for k in keys if k in ENTRIES))


def bibtex(keys: Iterable[str]) -> str:
    """The BibTeX entries of ``keys`` (unknown keys skipped), one blank line apart."""
    entries = [ENTRIES[k] for k in dict.fromkeys(keys) if k in ENTRIES]
    return "\n\n".join(entries) + ("\n" if entries else "")

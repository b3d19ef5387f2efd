"""The toy world: a rendered world of creatures and objects, and a small LLaVA pretrained on it.

No real LLaVA weights can be downloaded on our machines, so personalization quality is measured on
a model organism we control:

- :mod:`~personalization.toyworld.world` renders scenes (Pillow, deterministic from a seed) and
  defines entities, subjects and their look-alikes.
- :mod:`~personalization.toyworld.corpus` is the generic pretraining corpus (never about a
  specific subject) and :func:`~personalization.toyworld.corpus.attribute_questions`.
- :mod:`~personalization.toyworld.pretrain` pretrains the model shipped in ``weights/`` (loaded as
  ``load_model("toyworld", ...)``) and measures its generic QA accuracy.
- :mod:`~personalization.toyworld.dataset` writes personalization datasets in the Yo'LLaVA layout.
- :mod:`~personalization.toyworld.painting` paints planned scenes on several cores while
  pretraining waits for them (the same pixels as in line).

Importing this package loads nothing and renders nothing.
"""

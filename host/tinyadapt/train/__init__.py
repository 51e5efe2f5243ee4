"""On-device training, planned on the host (the Tiny Training Engine idea, arXiv 2206.15472).

  scheme.py     which layers are updated: bias depth, weight layers and channel ratios
  graph.py      the backward graph: derived from the converted model, frozen branches pruned,
                updated ops sliced to their kept channels, ordered so each update is applied
                at once; planned by plan/memory.py and written into the blob's TRAIN section
  reference.py  NumPy float reference of the same math (backward ops, QAS sparse SGD)
  search.py     contribution analysis and the budgeted scheme search (plan-update)
  session.py    the training session: a target (host engine or device) fed sample by sample
  tflite_patch  the adapted weights written back into a copy of the .tflite
"""

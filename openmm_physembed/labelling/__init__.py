"""Labelling structures with energies and forces (GFN2-xTB).

The way in is :mod:`.labeller` (``label_structures``, ``compute_e0s``); it owns the backend table.
Behind it, one module per backend (:mod:`.xtb_python_backend` for molecules, :mod:`.tblite_backend`
for periodic cells), each importing only the shared core :mod:`.gfn2`. :mod:`.liquid_dataset` and
:mod:`.combined_dataset` build whole liquid datasets on top of the labeller.
"""

"""Reports of a pipeline run: one self-contained HTML page (``robofail report``) and episode
videos with the monitor's scores beneath the frames (``robofail render``).

Needs the ``sim`` extra (matplotlib, OpenCV, h5py; MuJoCo to render from simulator states).
"""

"""The defaults more than one part reads, written once: the CLI's help, the option classes, the
renderer, the live controls and the browser's state all take them from here."""

ALPHA = 0.4  # the heatmap's weight in the blend (the keras.io example's value)
COLORMAP = "jet"  # the keras.io example's colormap
MOTION = "shift"  # how a stale live heatmap is moved; measured best: README, "Motion compensation"

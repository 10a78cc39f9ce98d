"""The frozen Settings (every knob, its default and help), settings files and presets, and the layers
(flag > environment > preset > file > default) that say where each value came from."""

"""The bundled tasks: gymnasium envs over the scenes in ``sims/`` and their scripted experts."""

"""The plugin's own tests. pytest_rmqd is active through its entry point (pip install);
pytester runs pytest sessions inside these tests for the plugin-level behaviours."""

pytest_plugins = ['pytester']

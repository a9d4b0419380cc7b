"""nbval settings: stderr (progress bars, warnings with kernel paths) is not compared;
every other output is, after the substitutions of nbval_sanitize.cfg."""


def pytest_collectstart(collector):
    if collector.fspath and collector.fspath.ext == ".ipynb":
        collector.skip_compare += ("stderr",)

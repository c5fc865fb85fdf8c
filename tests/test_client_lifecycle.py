"""The client's lifecycle as the rendered project states it: after a refused login the function
backs off (database.py's AUTH_BACKOFF_SECONDS), and the README gives the same figure."""

import re


def test_the_readme_states_the_functions_back_off_after_a_refused_login(bake):
    result = bake.ok()
    database = next(result.project_path.glob("src/*/database.py")).read_text()
    (seconds,) = re.findall(r"^AUTH_BACKOFF_SECONDS = (\d+)\.0$", database, re.M)
    readme = " ".join(result.readme.split())
    assert f"for {seconds} s without connecting" in readme
    assert f"trying once every {seconds} s" in readme

"""The WordPress plugin (supporters/widget/wordpress/) in Debian's WordPress with MariaDB, read in Chromium.

A throwaway site in a temporary folder and database: installed by PHP, the plugin activated
and set up by an administrator in the browser, a post published by an Author (who cannot
post scripts) with the shortcode and the block, and a reader who sees the card and gives.
Skipped when PHP, Debian's WordPress or MariaDB is missing (.ci/run installs them).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.browser.test_widget_browser import site  # noqa: F401  (the app's fixture, with its campaign)
from tests.conftest import LiveServer, free_port, wait_for

pytestmark = pytest.mark.browser

WORDPRESS = Path(os.environ.get("WORDPRESS_DIR", "/usr/share/wordpress"))
PLUGIN = Path(__file__).parents[2] / "supporters" / "widget" / "wordpress" / "supporters-widget"
MARIADB = ["mariadb", "-h", "127.0.0.1", "-P", "3306", "-u", "root"]


def _missing() -> str:
    if not shutil.which("php"):
        return "PHP is not installed (apt-get install php-cli php-mysql)"
    if not (WORDPRESS / "wp-settings.php").exists() or not (WORDPRESS / "wp-content/themes/twentytwentythree").exists():
        return f"Debian's WordPress is not at {WORDPRESS} (apt-get install wordpress wordpress-theme-twentytwentythree)"
    if not shutil.which("mariadb"):
        return "the MariaDB client is not installed (apt-get install mariadb-client)"
    if subprocess.run([*MARIADB, "-e", "SELECT 1"], capture_output=True, timeout=10).returncode:
        return "MariaDB does not answer on 127.0.0.1:3306 as root"
    if subprocess.run(["php", "-r", "exit(extension_loaded('mysqli') ? 0 : 1);"], timeout=10).returncode:
        return "PHP has no mysqli (apt-get install php-mysql)"
    return ""


def php(root: Path, code: str, installing: bool = False) -> str:
    """Run PHP inside the WordPress at `root` (wp-load.php loaded) and return what it printed."""
    script = root / f"run-{secrets.token_hex(4)}.php"
    head = "define('WP_INSTALLING', true);\n" if installing else ""
    script.write_text("<?php\n" + head + "require __DIR__ . '/wp-load.php';\n" + textwrap.dedent(code))
    try:
        done = subprocess.run(["php", str(script)], cwd=root, capture_output=True, text=True, timeout=60)
    finally:
        script.unlink()
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture
def wordpress(tmp_path: Path) -> Iterator[dict[str, Any]]:
    if reason := _missing():
        if os.environ.get("CI"):
            pytest.fail(reason + ": .ci/run installs it")
        pytest.skip(reason)
    database = f"wp_test_{secrets.token_hex(4)}"
    root = tmp_path / "wordpress"
    # A copy of Debian's files (hard links when they share a file system) with our own wp-config.php
    # and wp-content: Debian's wp-config.php reads /etc/wordpress, which a test must not touch.
    if subprocess.run(["cp", "-al", str(WORDPRESS), str(root)], capture_output=True).returncode:
        shutil.copytree(WORDPRESS, root, symlinks=True, dirs_exist_ok=True)
    (root / "wp-config.php").unlink()
    shutil.rmtree(root / "wp-content")
    (root / "wp-content" / "plugins").mkdir(parents=True)
    (root / "wp-content" / "themes").mkdir()
    (root / "wp-content" / "themes" / "twentytwentythree").symlink_to(WORDPRESS / "wp-content/themes/twentytwentythree")
    (root / "wp-content" / "plugins" / "supporters-widget").symlink_to(PLUGIN)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    (root / "wp-config.php").write_text(
        textwrap.dedent(f"""\
        <?php
        define('DB_NAME', '{database}'); define('DB_USER', 'root'); define('DB_PASSWORD', '');
        define('DB_HOST', '127.0.0.1:3306'); define('DB_CHARSET', 'utf8mb4'); define('DB_COLLATE', '');
        foreach (['AUTH_KEY', 'SECURE_AUTH_KEY', 'LOGGED_IN_KEY', 'NONCE_KEY', 'AUTH_SALT', 'SECURE_AUTH_SALT',
                  'LOGGED_IN_SALT', 'NONCE_SALT'] as $k) define($k, '{secrets.token_hex(16)}' . $k);
        define('WP_HOME', '{url}'); define('WP_SITEURL', '{url}');
        define('DISABLE_WP_CRON', true); define('AUTOMATIC_UPDATER_DISABLED', true);
        define('WP_HTTP_BLOCK_EXTERNAL', true); define('WP_DEBUG', false);
        $table_prefix = 'wp_';
        if (!defined('ABSPATH')) define('ABSPATH', __DIR__ . '/');
        require_once ABSPATH . 'wp-settings.php';
        """)
    )
    subprocess.run([*MARIADB, "-e", f"CREATE DATABASE {database}"], check=True, timeout=20)
    server = None
    try:
        assert (
            php(
                root,
                """
            require_once ABSPATH . 'wp-admin/includes/upgrade.php';
            wp_install('A WordPress blog', 'admin', 'admin@example.org', false, '', 'admin-pass-123');
            switch_theme('twentytwentythree');
            wp_insert_user(['user_login' => 'author', 'user_pass' => 'author-pass-123',
                            'user_email' => 'author@example.org', 'role' => 'author']);
            echo is_blog_installed() ? 'installed' : 'not installed';
            """,
                installing=True,
            )
            == "installed"
        )
        server = subprocess.Popen(
            ["php", "-S", f"127.0.0.1:{port}", "-t", str(root)],
            cwd=root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(
            lambda: subprocess.run(["php", "-r", f"exit(@fsockopen('127.0.0.1', {port}) ? 0 : 1);"]).returncode == 0
        )
        yield {"root": root, "url": url}
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        subprocess.run([*MARIADB, "-e", f"DROP DATABASE IF EXISTS {database}"], timeout=20)


def sign_in(page: Any, url: str, user: str, password: str) -> None:
    page.goto(f"{url}/wp-login.php")
    page.locator("#user_login").fill(user)
    page.locator("#user_pass").fill(password)
    page.locator("#wp-submit").click()
    page.wait_for_url("**/wp-admin/**")


def test_an_author_places_the_card_with_the_plugin_and_a_reader_gives_through_it(
    site: LiveServer,  # noqa: F811
    wordpress: dict[str, Any],
    page: Any,
) -> None:
    url, root = wordpress["url"], wordpress["root"]
    page.set_default_timeout(20_000)

    # The administrator activates the plugin and gives it the app's address.
    sign_in(page, url, "admin", "admin-pass-123")
    page.goto(f"{url}/wp-admin/plugins.php")
    page.locator("tr[data-slug=supporters-widget] .activate a").click()
    page.locator("tr[data-slug=supporters-widget] .deactivate").wait_for()
    page.goto(f"{url}/wp-admin/options-general.php?page=supporters-widget")
    page.get_by_label("Address of the Supporters app").fill(site.url + "/")
    page.locator("#submit").click()
    page.locator("#setting-error-settings_updated").wait_for()
    page.context.clear_cookies()

    # An Author publishes a post: WordPress strips a pasted script on save, the shortcode and the block stay.
    post = php(
        root,
        f"""
        wp_set_current_user(get_user_by('login', 'author')->ID);
        $id = wp_insert_post(['post_title' => 'Grid news', 'post_name' => 'grid-news', 'post_status' => 'publish',
            'post_content' => "<p>The article.</p>\\n<script src='{site.url}/widget.js'></script>\\n"
                . "[supporters_widget campaign=\\"general\\"]\\n<p>More text.</p>\\n"
                . '<!-- wp:supporters/widget {{"campaign":"general"}} /-->'], true);
        $saved = get_post($id);
        echo $id, ' ', get_permalink($id), ' ', (int) current_user_can('unfiltered_html'), ' ',
            (int) (strpos($saved->post_content, '<script') !== false), ' ',
            (int) has_shortcode($saved->post_content, 'supporters_widget');
        """,
    ).split()
    post_id, permalink, unfiltered, script_kept, shortcode_kept = post
    assert (unfiltered, script_kept, shortcode_kept) == ("0", "0", "1")

    # A reader sees two cards (the shortcode's and the block's) and gives through the first.
    page.goto(permalink)
    cards = page.locator("[data-supporters-widget] section.c h2")
    wait_for(lambda: cards.count() == 2)
    assert page.locator(".supporters-widget").first.bounding_box()["height"] == 448
    first = page.locator("[data-supporters-widget] section.c").first
    first.get_by_role("link", name="Support us").click()
    page.wait_for_url(f"{site.url}/donate/?*")
    query = parse_qs(urlsplit(page.url).query)
    assert query["campaign"] == ["general"] and query["article"] == ["grid-news"]
    assert query["src"] == [permalink] and urlsplit(permalink).query == f"p={post_id}"

    # Without JavaScript, the plain link carries the same attribution, its address encoded.
    html = subprocess.run(
        ["php", "-r", f"echo file_get_contents('{permalink}');"], capture_output=True, text=True, timeout=30
    )
    link = html.stdout.split('<noscript><a href="', 1)[1].split('"', 1)[0].replace("&#038;", "&").replace("&amp;", "&")
    assert parse_qs(urlsplit(link).query)["src"] == [permalink] and "src=http%3A%2F%2F" in link

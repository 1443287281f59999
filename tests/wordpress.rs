//! WordPress for real: Debian's `wordpress` on PHP's built-in server, its
//! database in a MariaDB started here (a temp directory, a loopback port),
//! and the plugin from `integrations/wordpress/framecast-online/` installed
//! and set up with WordPress's own functions. One Chromium logs in as a
//! member; another visits as a guest. The live image in each page, as
//! Chromium draws it (an element screenshot, decoded), reads "1 members,
//! 1 guests"; after the member logs out and reloads, "0 members, 1 guests"
//! (both browsers share 127.0.0.1, so they are one guest).

mod common;

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::chromium::start_chromium;
use common::watched::poll_until;
use common::{Server, api_with_token, expected_people, run};
use fantoccini::{Client, Locator};

const KEY: &str = "wordpress-test-signing-key-0123456789";
const TOKEN: &str = "wordpress-test-api-token-0123456789";

/// A child process killed (and reaped) when dropped, also when the test fails.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// WordPress with the plugin, pointed at `framecast`; the page with the
/// shortcode is at `page`.
struct Wordpress {
    _php: Killed,
    _db: Killed,
    _dir: tempfile::TempDir,
    base: String,
    page: String,
}

fn start_wordpress(framecast: SocketAddr) -> Wordpress {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (db_port, web_port) = (free_port(), free_port());
    let base = format!("http://127.0.0.1:{web_port}");

    // MariaDB on its own data directory.
    let data = d.join("db");
    run(Command::new("mariadb-install-db")
        .args(["--no-defaults", "--auth-root-authentication-method=normal", "--skip-test-db", "--user=root"])
        .arg(format!("--datadir={}", data.display())));
    let socket = d.join("db.sock");
    let db = Command::new("mariadbd")
        .args(["--no-defaults", "--skip-log-bin", "--bind-address=127.0.0.1", "--user=root"])
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--socket={}", socket.display()))
        .arg(format!("--port={db_port}"))
        .arg(format!("--pid-file={}", d.join("db.pid").display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mariadbd (Debian's mariadb-server; tests/run.sh installs it)");
    let db = Killed(db);
    wait_for("MariaDB's socket", Duration::from_secs(30), || socket.exists());
    run(Command::new("mariadb").args(["--no-defaults", "-u", "root"]).arg(format!("--socket={}", socket.display())).args([
        "-e",
        "CREATE DATABASE wp; CREATE USER 'wp'@'127.0.0.1' IDENTIFIED BY 'wp'; GRANT ALL ON wp.* TO 'wp'@'127.0.0.1';",
    ]));

    // WordPress as Debian ships it, with this test's config, a plain theme
    // (Debian's themes are separate packages) and the plugin.
    let root = d.join("root");
    run(Command::new("cp").arg("-a").arg("/usr/share/wordpress").arg(&root));
    let theme = root.join("wp-content/themes/plain");
    std::fs::create_dir_all(&theme).unwrap();
    std::fs::write(theme.join("style.css"), "/*\nTheme Name: Plain\n*/\n").unwrap();
    std::fs::write(
        theme.join("index.php"),
        "<!doctype html><html><head><meta charset=\"utf-8\"><?php wp_head(); ?></head><body>\n\
         <?php while (have_posts()) { the_post(); the_content(); } ?>\n<?php wp_footer(); ?></body></html>\n",
    )
    .unwrap();
    let plugins = root.join("wp-content/plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let plugin = Path::new(env!("CARGO_MANIFEST_DIR")).join("integrations/wordpress/framecast-online");
    run(Command::new("cp").arg("-r").arg(&plugin).arg(&plugins));
    std::fs::write(
        root.join("wp-config.php"),
        format!(
            "<?php\n\
             define('DB_NAME', 'wp'); define('DB_USER', 'wp'); define('DB_PASSWORD', 'wp');\n\
             define('DB_HOST', '127.0.0.1:{db_port}'); define('DB_CHARSET', 'utf8mb4'); define('DB_COLLATE', '');\n\
             define('WP_HOME', '{base}'); define('WP_SITEURL', '{base}');\n\
             define('WP_CONTENT_DIR', __DIR__ . '/wp-content');\n\
             foreach (['AUTH_KEY', 'SECURE_AUTH_KEY', 'LOGGED_IN_KEY', 'NONCE_KEY', 'AUTH_SALT', 'SECURE_AUTH_SALT', 'LOGGED_IN_SALT', 'NONCE_SALT'] as $k) {{ define($k, $k . '-test'); }}\n\
             $table_prefix = 'wp_';\n\
             if (!defined('ABSPATH')) {{ define('ABSPATH', __DIR__ . '/'); }}\n\
             require_once ABSPATH . 'wp-settings.php';\n"
        ),
    )
    .unwrap();
    // Installed, the plugin activated and set up, a member and the page:
    // with WordPress's own functions (Debian has no wp-cli).
    let setup = d.join("setup.php");
    std::fs::write(
        &setup,
        format!(
            "<?php\n\
             define('WP_INSTALLING', true);\n\
             $_SERVER['HTTP_HOST'] = '127.0.0.1:{web_port}';\n\
             require '{root}/wp-load.php';\n\
             require_once ABSPATH . 'wp-admin/includes/upgrade.php';\n\
             require_once ABSPATH . 'wp-admin/includes/plugin.php';\n\
             add_filter('pre_wp_mail', '__return_true');\n\
             wp_install('Forum', 'admin', 'admin@example.org', true, '', 'admin-pass-123');\n\
             switch_theme('plain');\n\
             $r = activate_plugin('framecast-online/framecast-online.php');\n\
             if (is_wp_error($r)) {{ fwrite(STDERR, $r->get_error_message()); exit(1); }}\n\
             update_option('framecast_online', ['base_url' => 'http://{framecast}', 'key' => '{KEY}', 'room' => 'site', 'ttl' => 86400]);\n\
             $id = wp_create_user('alice', 'alice-pass-123', 'alice@example.org');\n\
             wp_update_user(['ID' => $id, 'display_name' => 'Alice']);\n\
             echo wp_insert_post(['post_type' => 'page', 'post_status' => 'publish', 'post_title' => 'Online', 'post_content' => '[framecast_online]']), \"\\n\";\n",
            root = root.display(),
        ),
    )
    .unwrap();
    let page_id = run(Command::new("php").arg(&setup)).trim().to_string();
    assert!(page_id.parse::<u64>().is_ok_and(|id| id > 0), "the page: {page_id:?}");
    let php = Command::new("php")
        .args(["-S", &format!("127.0.0.1:{web_port}"), "-t"])
        .arg(&root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("php -S");
    let php = Killed(php);
    wait_for("PHP's server", Duration::from_secs(20), || std::net::TcpStream::connect(("127.0.0.1", web_port)).is_ok());
    Wordpress { _php: php, _db: db, _dir: dir, page: format!("{base}/?page_id={page_id}"), base }
}

/// RGB pixels of a screenshot (Chromium's are RGB or RGBA).
fn screenshot_rgb(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().expect("a PNG screenshot");
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).expect("a PNG screenshot");
    buf.truncate(info.buffer_size());
    let rgb = match info.color_type {
        png::ColorType::Rgb => buf,
        png::ColorType::Rgba => buf.chunks(4).flat_map(|p| [p[0], p[1], p[2]]).collect(),
        other => panic!("a screenshot in {other:?}"),
    };
    (info.width, info.height, rgb)
}

/// The rendered picture on the page's white background, as RGB.
fn on_white((w, h, rgba): (u32, u32, Vec<u8>)) -> (u32, u32, Vec<u8>) {
    let over = |c: u8, a: u8| ((u32::from(c) * u32::from(a) + 255 * (255 - u32::from(a)) + 127) / 255) as u8;
    (w, h, rgba.chunks(4).flat_map(|p| [over(p[0], p[3]), over(p[1], p[3]), over(p[2], p[3])]).collect())
}

/// Waits until the page's live image, as Chromium draws it, equals `want`
/// (RGB on the page's white).
async fn wait_until_shows(client: &Client, want: &(u32, u32, Vec<u8>), who: &str) {
    let what = format!("{who}'s page showing the {}x{} picture", want.0, want.1);
    poll_until(&what, Duration::from_secs(20), || async {
        let shot = match client.find(Locator::Css("img.framecast-online")).await {
            Ok(img) => img.screenshot().await.ok(),
            Err(_) => None,
        };
        let seen = shot.map(|png| screenshot_rgb(&png));
        match &seen {
            Some((w, h, px))
                if (*w, *h) == (want.0, want.1) && px.iter().zip(&want.2).all(|(a, b)| a.abs_diff(*b) <= 2) =>
            {
                Ok(())
            }
            _ => Err(format!("{:?}", seen.map(|(w, h, _)| (w, h)))),
        }
    })
    .await
}

/// Waits until the room counts `members` and `guests`; its JSON then.
async fn wait_for_people(addr: SocketAddr, members: u64, guests: u64) -> serde_json::Value {
    let what = format!("{members} members and {guests} guests");
    poll_until(&what, Duration::from_secs(20), || async {
        let json = api_with_token(addr, "/api/v1/channels/online/site", TOKEN).await;
        if json["members"] == members && json["guests"] == guests { Ok(json) } else { Err(json.to_string()) }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_and_a_guest_in_wordpress_see_each_other() {
    let _serial = common::serial();
    let config = serde_json::json!({
        "url_signing_keys": [KEY],
        "api_tokens": [TOKEN],
        "rooms": { "site": { "count": "people" } }
    });
    let server = Server::start(&config.to_string());
    let wp = start_wordpress(server.addr);

    // The member logs in (WordPress's own form), then opens the page.
    let (_member_driver, member) = start_chromium().await;
    member.goto(&format!("{}/wp-login.php", wp.base)).await.unwrap();
    member.find(Locator::Id("user_login")).await.unwrap().send_keys("alice").await.unwrap();
    member.find(Locator::Id("user_pass")).await.unwrap().send_keys("alice-pass-123").await.unwrap();
    member.find(Locator::Id("wp-submit")).await.unwrap().click().await.unwrap();
    member.wait().for_element(Locator::Css("#wpadminbar, body.wp-admin, #loginform")).await.unwrap();
    member.goto(&wp.page).await.unwrap();
    // The guest, in a browser of its own.
    let (_guest_driver, guest) = start_chromium().await;
    guest.goto(&wp.page).await.unwrap();

    let json = wait_for_people(server.addr, 1, 1).await;
    assert_eq!(json["member_names"], serde_json::json!(["Alice"]), "the plugin signed the display name");
    let one_and_one = on_white(expected_people(1, 1));
    wait_until_shows(&member, &one_and_one, "the member").await;
    wait_until_shows(&guest, &one_and_one, "the guest").await;

    // The member logs out (WordPress asks to confirm) and reloads the page.
    member.goto(&format!("{}/wp-login.php?action=logout", wp.base)).await.unwrap();
    member.find(Locator::LinkText("log out")).await.unwrap().click().await.unwrap();
    member.wait().for_element(Locator::Id("loginform")).await.unwrap();
    member.goto(&wp.page).await.unwrap();
    wait_for_people(server.addr, 0, 1).await;
    let none_and_one = on_white(expected_people(0, 1));
    wait_until_shows(&member, &none_and_one, "the logged-out member").await;
    wait_until_shows(&guest, &none_and_one, "the guest").await;
    let json = api_with_token(server.addr, "/api/v1/channels/online/site", TOKEN).await;
    assert_eq!((json["members"].as_u64(), json["guests"].as_u64()), (Some(0), Some(1)), "{json}");
}

<?php
/**
 * Plugin Name:       Framecast Online
 * Description:       A live "who is online" image from a framecast server: members and guests, exact, without JavaScript. Signs the logged-in user into the image URL, as docs/forums.md in framecast describes.
 * Version:           0.1.0
 * Requires at least: 6.0
 * Requires PHP:      7.4
 * License:           MIT
 * Text Domain:       framecast-online
 */

if (!defined('ABSPATH')) {
    exit;
}

const FRAMECAST_ONLINE_OPTION = 'framecast_online';

/** The settings, with defaults. */
function framecast_online_settings(): array {
    $saved = get_option(FRAMECAST_ONLINE_OPTION, []);
    return wp_parse_args(is_array($saved) ? $saved : [], [
        'base_url' => '',
        'key' => '',
        'room' => 'site',
        'ttl' => 86400,
    ]);
}

/**
 * The signed text and signature of docs/signed-urls.md ("The signed text"):
 * the same as the PHP recipe in docs/forums.md.
 */
function framecast_online_member_query(string $room, string $key, string $id, string $name, int $ttl): string {
    $pairs = ['member' => $id, 'name' => $name, 'formats' => 'png', 'exp' => (string) (time() + $ttl)];
    $lines = [];
    foreach ($pairs as $k => $v) {
        $lines[] = rawurlencode($k) . '=' . rawurlencode($v);
    }
    sort($lines, SORT_STRING);
    $text = "framecast-signed-url-v2\nonline/$room\n" . implode("\n", $lines);
    $sig = rtrim(strtr(base64_encode(hash_hmac('sha256', $text, $key, true)), '+/', '-_'), '=');
    return implode('&', $lines) . '&sig=' . $sig;
}

/** A room name framecast accepts: letters, digits, `-` and `_`. */
function framecast_online_room(string $room): string {
    $room = preg_replace('/[^A-Za-z0-9_-]/', '', $room);
    return $room === '' ? 'site' : substr($room, 0, 64);
}

/**
 * The image URL for whoever is looking: signed for a logged-in user, plain
 * for a guest. Empty until the settings name a server.
 */
function framecast_online_url(string $room = ''): string {
    $s = framecast_online_settings();
    $base = rtrim((string) $s['base_url'], '/');
    if ($base === '') {
        return '';
    }
    $room = framecast_online_room($room !== '' ? $room : (string) $s['room']);
    $url = "$base/online/$room.png";
    $user = wp_get_current_user();
    if ($user && $user->exists() && $s['key'] !== '') {
        $url .= '?' . framecast_online_member_query($room, (string) $s['key'], (string) $user->ID, (string) $user->display_name, max(60, (int) $s['ttl']));
    }
    return $url;
}

/** The `<img>`; a page that names its member must not be cached for others. */
function framecast_online_img(string $room = ''): string {
    $url = framecast_online_url($room);
    if ($url === '') {
        return '';
    }
    if (is_user_logged_in() && !headers_sent()) {
        nocache_headers();
    }
    return '<img class="framecast-online" src="' . esc_url($url) . '" alt="' . esc_attr__('Who is online', 'framecast-online') . '">';
}

/**
 * Chrome keeps a page the visitor left in its back/forward cache, and with
 * it the live image's connection: the visitor would stay online for
 * minutes. On `pagehide` the image lets go (its connection closes at once),
 * and comes back if the page is shown from that cache again.
 */
add_action('wp_footer', function () {
    echo "<script>(function(){var all=function(){return document.querySelectorAll('img.framecast-online');};"
        . "addEventListener('pagehide',function(){all().forEach(function(i){if(i.src.indexOf('data:')!==0){i.dataset.live=i.src;i.src='data:,';}});});"
        . "addEventListener('pageshow',function(e){if(e.persisted){all().forEach(function(i){if(i.dataset.live){i.src=i.dataset.live;}});}});})();</script>\n";
});

/** [framecast_online room="site"] */
add_shortcode('framecast_online', function ($atts) {
    $atts = shortcode_atts(['room' => ''], $atts, 'framecast_online');
    return framecast_online_img((string) $atts['room']);
});

/** A widget for sidebars and footers. */
class Framecast_Online_Widget extends WP_Widget {
    public function __construct() {
        parent::__construct('framecast_online', __('Framecast: who is online', 'framecast-online'));
    }

    public function widget($args, $instance) {
        $img = framecast_online_img((string) ($instance['room'] ?? ''));
        if ($img === '') {
            return;
        }
        echo $args['before_widget'];
        if (!empty($instance['title'])) {
            echo $args['before_title'] . esc_html($instance['title']) . $args['after_title'];
        }
        echo $img;
        echo $args['after_widget'];
    }

    public function form($instance) {
        foreach (['title' => __('Title', 'framecast-online'), 'room' => __('Room (empty: the site-wide room)', 'framecast-online')] as $field => $label) {
            $id = $this->get_field_id($field);
            printf(
                '<p><label for="%1$s">%2$s</label><input class="widefat" id="%1$s" name="%3$s" type="text" value="%4$s"></p>',
                esc_attr($id),
                esc_html($label),
                esc_attr($this->get_field_name($field)),
                esc_attr((string) ($instance[$field] ?? ''))
            );
        }
        return '';
    }

    public function update($new, $old) {
        return [
            'title' => sanitize_text_field((string) ($new['title'] ?? '')),
            'room' => ($new['room'] ?? '') === '' ? '' : framecast_online_room((string) $new['room']),
        ];
    }
}

add_action('widgets_init', function () {
    register_widget('Framecast_Online_Widget');
});

/** Settings → Framecast Online. */
add_action('admin_init', function () {
    register_setting('framecast_online', FRAMECAST_ONLINE_OPTION, [
        'type' => 'array',
        'sanitize_callback' => function ($in) {
            $in = is_array($in) ? $in : [];
            return [
                'base_url' => esc_url_raw(trim((string) ($in['base_url'] ?? ''))),
                'key' => trim((string) ($in['key'] ?? '')),
                'room' => framecast_online_room((string) ($in['room'] ?? 'site')),
                'ttl' => max(60, min(31536000, (int) ($in['ttl'] ?? 86400))),
            ];
        },
    ]);
});

add_action('admin_menu', function () {
    add_options_page(__('Framecast Online', 'framecast-online'), __('Framecast Online', 'framecast-online'), 'manage_options', 'framecast-online', 'framecast_online_settings_page');
});

function framecast_online_settings_page(): void {
    if (!current_user_can('manage_options')) {
        return;
    }
    $s = framecast_online_settings();
    $name = FRAMECAST_ONLINE_OPTION;
    $fields = [
        'base_url' => [__('framecast server', 'framecast-online'), 'url', 'https://online.example.org'],
        'key' => [__('Signing key (one of url_signing_keys)', 'framecast-online'), 'password', ''],
        'room' => [__('Site-wide room', 'framecast-online'), 'text', 'site'],
        'ttl' => [__('Signed URLs live (seconds)', 'framecast-online'), 'number', '86400'],
    ];
    echo '<div class="wrap"><h1>' . esc_html__('Framecast Online', 'framecast-online') . '</h1>';
    echo '<p>' . esc_html__('The room must count people: "rooms": {"site": {"count": "people"}} in framecast\'s config, with this key in url_signing_keys. Put [framecast_online] in a page, or the widget in a footer.', 'framecast-online') . '</p>';
    echo '<form method="post" action="options.php">';
    settings_fields('framecast_online');
    echo '<table class="form-table">';
    foreach ($fields as $field => [$label, $type, $placeholder]) {
        printf(
            '<tr><th><label for="fo-%1$s">%2$s</label></th><td><input id="fo-%1$s" name="%3$s[%1$s]" type="%4$s" value="%5$s" placeholder="%6$s" class="regular-text" autocomplete="off"></td></tr>',
            esc_attr($field),
            esc_html($label),
            esc_attr($name),
            esc_attr($type),
            esc_attr((string) $s[$field]),
            esc_attr($placeholder)
        );
    }
    echo '</table>';
    submit_button();
    echo '</form></div>';
}

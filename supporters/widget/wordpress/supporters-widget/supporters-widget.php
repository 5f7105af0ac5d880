<?php
/**
 * Plugin Name: Supporters widget
 * Description: The "Support Us" card of a Supporters app, for every author: the shortcode [supporters_widget campaign="general"] and the block "Support Us card". Neither needs the unfiltered_html capability that a pasted script or iframe does.
 * Version: 1.0.0
 * Requires at least: 6.1
 * Requires PHP: 7.4
 * License: GPL-2.0-or-later
 * Text Domain: supporters-widget
 */

defined( 'ABSPATH' ) || exit;

const SUPPORTERS_WIDGET_OPTION = 'supporters_widget_app_url';
const SUPPORTERS_WIDGET_HEIGHT = 448; // px: the card's height at every width (docs/widget.md, "Its size")

/** The Supporters app's address (Settings → Supporters widget), without a trailing slash; '' until set. */
function supporters_widget_app_url() {
	$url = esc_url_raw( (string) get_option( SUPPORTERS_WIDGET_OPTION, '' ), array( 'https', 'http' ) );
	return untrailingslashit( $url );
}

/** A campaign slug as the app writes them, or '' (the card is then left out). */
function supporters_widget_slug( $value ) {
	$value = strtolower( trim( (string) $value ) );
	return preg_match( '/^[a-z0-9][a-z0-9_-]{0,63}$/', $value ) ? $value : '';
}

/** The card's placeholder, with the plain link inside for readers without JavaScript. */
function supporters_widget_html( $atts ) {
	$atts     = shortcode_atts( array( 'campaign' => 'general', 'article' => '' ), (array) $atts, 'supporters_widget' );
	$app      = supporters_widget_app_url();
	$campaign = supporters_widget_slug( $atts['campaign'] );
	if ( '' === $app || '' === $campaign ) {
		return current_user_can( 'edit_posts' ) ? '<!-- supporters_widget: set the app address in Settings → Supporters widget, and a campaign slug -->' : '';
	}
	$post    = get_post();
	$article = '' !== $atts['article'] ? sanitize_title( $atts['article'] ) : ( $post ? $post->post_name : '' );
	$page    = $post ? get_permalink( $post ) : home_url( '/' );
	$query   = array_filter( array( 'campaign' => $campaign, 'article' => $article, 'src' => $page ) );
	$donate  = $app . '/donate/?' . http_build_query( $query, '', '&', PHP_QUERY_RFC3986 );
	wp_enqueue_script( 'supporters-widget', $app . '/widget.js', array(), null, true );
	return sprintf(
		'<div class="supporters-widget" data-supporters-widget data-campaign="%s" data-article="%s"><noscript><a href="%s">%s</a></noscript></div>',
		esc_attr( $campaign ),
		esc_attr( $article ),
		esc_url( $donate ),
		esc_html__( 'Support us', 'supporters-widget' )
	);
}
add_shortcode( 'supporters_widget', 'supporters_widget_html' );

/** widget.js loads without blocking the page. */
add_filter(
	'script_loader_tag',
	function ( $tag, $handle ) {
		return 'supporters-widget' === $handle ? str_replace( ' src=', ' async src=', $tag ) : $tag;
	},
	10,
	2
);

/** The card's space, kept from the first paint (in the page's head) so nothing moves when it arrives. */
add_action(
	'wp_enqueue_scripts',
	function () {
		$post = get_post();
		if ( ! is_singular() || ! $post || ! ( has_shortcode( $post->post_content, 'supporters_widget' ) || has_block( 'supporters/widget', $post ) ) ) {
			return;
		}
		wp_register_style( 'supporters-widget', false, array(), '1.0.0' );
		wp_enqueue_style( 'supporters-widget' );
		wp_add_inline_style(
			'supporters-widget',
			'@media (scripting: enabled) { .supporters-widget[data-supporters-widget]:not([hidden]) { display: block; height: ' . SUPPORTERS_WIDGET_HEIGHT . 'px; } }'
			. ' .supporters-widget { margin: 2rem auto; max-width: 640px; }'
		);
	}
);

/** The block: the same card, its campaign chosen in the block's sidebar. */
add_action(
	'init',
	function () {
		wp_register_script( 'supporters-widget-block', plugins_url( 'block.js', __FILE__ ), array( 'wp-blocks', 'wp-element', 'wp-block-editor', 'wp-components' ), '1.0.0', true );
		register_block_type(
			'supporters/widget',
			array(
				'api_version'     => 2,
				'editor_script'   => 'supporters-widget-block',
				'attributes'      => array( 'campaign' => array( 'type' => 'string', 'default' => 'general' ) ),
				'render_callback' => function ( $attributes ) {
					return supporters_widget_html( array( 'campaign' => $attributes['campaign'] ?? 'general' ) );
				},
			)
		);
	}
);

/** Settings → Supporters widget: the app's address. */
add_action(
	'admin_init',
	function () {
		register_setting(
			'supporters_widget',
			SUPPORTERS_WIDGET_OPTION,
			array(
				'type'              => 'string',
				'sanitize_callback' => function ( $value ) {
					return untrailingslashit( esc_url_raw( trim( (string) $value ), array( 'https', 'http' ) ) );
				},
			)
		);
		add_settings_section( 'supporters_widget_main', '', '__return_false', 'supporters-widget' );
		add_settings_field(
			SUPPORTERS_WIDGET_OPTION,
			__( 'Address of the Supporters app', 'supporters-widget' ),
			function () {
				printf(
					'<input type="url" class="regular-text" id="%1$s" name="%1$s" value="%2$s" placeholder="https://give.example.org"><p class="description">%3$s</p>',
					esc_attr( SUPPORTERS_WIDGET_OPTION ),
					esc_attr( get_option( SUPPORTERS_WIDGET_OPTION, '' ) ),
					esc_html__( 'Where widget.js and the donation form are served from. On the app, list this site in WIDGET_ALLOWED_ORIGINS only if you also use its iframe.', 'supporters-widget' )
				);
			},
			'supporters-widget',
			'supporters_widget_main',
			array( 'label_for' => SUPPORTERS_WIDGET_OPTION )
		);
	}
);

add_action(
	'admin_menu',
	function () {
		add_options_page(
			__( 'Supporters widget', 'supporters-widget' ),
			__( 'Supporters widget', 'supporters-widget' ),
			'manage_options',
			'supporters-widget',
			function () {
				echo '<div class="wrap"><h1>' . esc_html__( 'Supporters widget', 'supporters-widget' ) . '</h1><form method="post" action="options.php">';
				settings_fields( 'supporters_widget' );
				do_settings_sections( 'supporters-widget' );
				submit_button();
				echo '</form></div>';
			}
		);
	}
);

/* The "Support Us card" block in the editor: a box naming its campaign; the page shows the card
   (rendered by the plugin's PHP, the same as the shortcode). No build step. */
(function (blocks, element, blockEditor, components) {
  var el = element.createElement;
  blocks.registerBlockType("supporters/widget", {
    apiVersion: 2,
    title: "Support Us card",
    category: "widgets",
    icon: "heart",
    attributes: { campaign: { type: "string", "default": "general" } },
    edit: function (props) {
      return el("div", blockEditor.useBlockProps({ style: { border: "1px dashed #b3261e", padding: "1em" } }),
        el(blockEditor.InspectorControls, null,
          el(components.PanelBody, { title: "Campaign" },
            el(components.TextControl, {
              label: "Campaign slug",
              value: props.attributes.campaign,
              onChange: function (value) { props.setAttributes({ campaign: value }); }
            }))),
        "Support Us card: " + (props.attributes.campaign || "general"));
    },
    save: function () { return null; }
  });
})(window.wp.blocks, window.wp.element, window.wp.blockEditor, window.wp.components);

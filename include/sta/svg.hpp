#pragma once
// A tiny SVG writer for the teaching pictures (sta viz, sta report): rectangles, lines,
// text and groups in a fixed viewBox, with XML escaping. No dependencies; the output is a
// well-formed standalone SVG 1.1 document, or a fragment to inline in HTML.
#include <string>
#include <vector>

namespace sta {

/// Text safe inside XML 1.0 content and attributes: & < > " ' escaped, C0 controls other
/// than tab/newline/CR dropped, and every byte that is not well-formed UTF-8 replaced by U+FFFD.
std::string xml_escape(const std::string& text);

/// `v` in short form for coordinates: at most two decimals, no trailing zeros ("12", "3.5").
std::string svg_number(double v);

/// Paint and identity of one shape. Empty strings are omitted from the output.
struct SvgStyle {
  std::string fill;          ///< CSS colour, e.g. "#0072B2" or "none"
  std::string stroke;        ///< CSS colour of the outline
  double stroke_width = 0;   ///< px in viewBox units; 0 = attribute omitted
  std::string dash;          ///< stroke-dasharray, e.g. "6 3"
  double opacity = 1;        ///< fill-opacity; 1 = omitted
  std::string css_class;     ///< class attribute (the tests count cells by it)
  std::string tooltip;       ///< <title> child: shown when the mouse hovers the shape
};

/// How a text is set.
struct TextStyle {
  double size = 13;               ///< font size, px
  std::string anchor = "start";   ///< text-anchor: start | middle | end
  std::string weight;             ///< font-weight, e.g. "bold"; empty = normal
  std::string fill = "#222";      ///< colour
  double rotate = 0;              ///< degrees, about (x, y)
  std::string css_class;          ///< class attribute
};

/// An SVG document of `width` x `height` viewBox units (px at 100% zoom). Shapes are
/// appended in painting order; begin_group()/end_group() nest. str() closes every open group.
class Svg {
 public:
  /// A document with viewBox "0 0 width height"; `title` becomes the document's <title>
  /// (what a browser tab and screen readers show).
  Svg(double width, double height, const std::string& title);

  /// Adds CSS rules to the document's <style> element (e.g. ".dense{fill:#0072B2}").
  void add_css(const std::string& css);
  /// A rectangle with top-left corner (x, y), in viewBox units.
  void rect(double x, double y, double w, double h, const SvgStyle& style);
  /// A straight line from (x1, y1) to (x2, y2); `style.fill` is ignored.
  void line(double x1, double y1, double x2, double y2, const SvgStyle& style);
  /// A text whose baseline starts (anchor start), centres (middle) or ends (end) at (x, y).
  void text(double x, double y, const std::string& content, const TextStyle& style);
  /// Opens a <g> with optional class and transform (e.g. "translate(10,20)").
  void begin_group(const std::string& css_class = "", const std::string& transform = "");
  /// Closes the innermost open group; throws std::logic_error if none is open.
  void end_group();

  double width() const { return width_; }
  double height() const { return height_; }

  /// The complete standalone document: XML declaration, <svg xmlns=...>, title, style, body.
  std::string str() const;
  /// The <svg> element alone (no XML declaration), to inline in an HTML page. `max_width`
  /// (px) scales it down on narrow screens while keeping its aspect ratio; 0 = natural size.
  std::string inline_str(double max_width = 0) const;

 private:
  std::string element(bool standalone, double max_width) const;

  double width_, height_;
  std::string title_;
  std::string css_;
  std::string body_;
  int open_groups_ = 0;
};

}  // namespace sta

#include "sta/svg.hpp"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <stdexcept>

namespace sta {

namespace {

// Length of the well-formed UTF-8 sequence at text[i] (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF, and not U+FFFE/U+FFFF, which XML forbids), or 0.
size_t utf8_sequence(const std::string& text, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char c = b(i);
  size_t len;
  uint32_t cp;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; }
  else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; }
  else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; }
  else return 0;
  if (i + len > text.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
  if ((cp >= 0xD800 && cp <= 0xDFFF) || cp == 0xFFFE || cp == 0xFFFF) return 0;
  return len;
}

}  // namespace

std::string xml_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const char c = text[i];
    const size_t len = utf8_sequence(text, i);
    if (len == 0) {  // invalid UTF-8 would make the document not well-formed: U+FFFD
      out += "\xEF\xBF\xBD";
      ++i;
      continue;
    }
    if (len > 1) {
      out.append(text, i, len);
      i += len;
      continue;
    }
    ++i;
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        // XML 1.0 forbids C0 controls except tab, newline and carriage return.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r') break;
        out += c;
    }
  }
  return out;
}

std::string svg_number(double v) {
  if (!std::isfinite(v)) return "0";
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  std::string s = buf;
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  if (s == "-0") s = "0";
  return s;
}

namespace {

std::string paint_attrs(const SvgStyle& s, bool with_fill) {
  std::string a;
  if (!s.css_class.empty()) a += " class=\"" + xml_escape(s.css_class) + "\"";
  if (with_fill && !s.fill.empty()) a += " fill=\"" + xml_escape(s.fill) + "\"";
  if (with_fill && s.opacity != 1) a += " fill-opacity=\"" + svg_number(s.opacity) + "\"";
  if (!s.stroke.empty()) a += " stroke=\"" + xml_escape(s.stroke) + "\"";
  if (s.stroke_width > 0) a += " stroke-width=\"" + svg_number(s.stroke_width) + "\"";
  if (!s.dash.empty()) a += " stroke-dasharray=\"" + xml_escape(s.dash) + "\"";
  return a;
}

// A shape with an optional <title> child (a tooltip).
std::string close_shape(const std::string& tag, const SvgStyle& s) {
  if (s.tooltip.empty()) return "/>\n";
  return "><title>" + xml_escape(s.tooltip) + "</title></" + tag + ">\n";
}

}  // namespace

Svg::Svg(double width, double height, const std::string& title)
    : width_(width), height_(height), title_(title) {}

void Svg::add_css(const std::string& css) { css_ += css + "\n"; }

void Svg::rect(double x, double y, double w, double h, const SvgStyle& style) {
  body_ += "<rect x=\"" + svg_number(x) + "\" y=\"" + svg_number(y) + "\" width=\"" +
           svg_number(w) + "\" height=\"" + svg_number(h) + "\"" + paint_attrs(style, true) +
           close_shape("rect", style);
}

void Svg::line(double x1, double y1, double x2, double y2, const SvgStyle& style) {
  body_ += "<line x1=\"" + svg_number(x1) + "\" y1=\"" + svg_number(y1) + "\" x2=\"" +
           svg_number(x2) + "\" y2=\"" + svg_number(y2) + "\"" + paint_attrs(style, false) +
           close_shape("line", style);
}

void Svg::text(double x, double y, const std::string& content, const TextStyle& style) {
  std::string a = "<text x=\"" + svg_number(x) + "\" y=\"" + svg_number(y) + "\" font-size=\"" +
                  svg_number(style.size) + "\"";
  if (style.anchor != "start") a += " text-anchor=\"" + xml_escape(style.anchor) + "\"";
  if (!style.weight.empty()) a += " font-weight=\"" + xml_escape(style.weight) + "\"";
  if (!style.fill.empty()) a += " fill=\"" + xml_escape(style.fill) + "\"";
  if (!style.css_class.empty()) a += " class=\"" + xml_escape(style.css_class) + "\"";
  if (style.rotate != 0)
    a += " transform=\"rotate(" + svg_number(style.rotate) + " " + svg_number(x) + " " +
         svg_number(y) + ")\"";
  body_ += a + ">" + xml_escape(content) + "</text>\n";
}

void Svg::begin_group(const std::string& css_class, const std::string& transform) {
  body_ += "<g";
  if (!css_class.empty()) body_ += " class=\"" + xml_escape(css_class) + "\"";
  if (!transform.empty()) body_ += " transform=\"" + xml_escape(transform) + "\"";
  body_ += ">\n";
  ++open_groups_;
}

void Svg::end_group() {
  if (open_groups_ == 0) throw std::logic_error("Svg::end_group without begin_group");
  body_ += "</g>\n";
  --open_groups_;
}

std::string Svg::element(bool standalone, double max_width) const {
  const std::string w = svg_number(width_), h = svg_number(height_);
  std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 " + w + " " + h + "\"";
  if (standalone)
    s += " width=\"" + w + "\" height=\"" + h + "\"";
  else
    s += " width=\"100%\" style=\"max-width:" + svg_number(max_width > 0 ? max_width : width_) +
         "px;height:auto\"";
  s += " font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" role=\"img\">\n";
  s += "<title>" + xml_escape(title_) + "</title>\n";
  if (!css_.empty()) s += "<style>\n" + css_ + "</style>\n";
  s += body_;
  for (int i = 0; i < open_groups_; ++i) s += "</g>\n";
  s += "</svg>\n";
  return s;
}

std::string Svg::str() const {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + element(true, 0);
}

std::string Svg::inline_str(double max_width) const { return element(false, max_width); }

}  // namespace sta

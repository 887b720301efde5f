// Check an attention kernel against a golden folder written by `sta golden`, from C++.
// Replace `my_kernel` with your port; here the library's own sta backend stands in.
//
// Build: part of the CMake project (target check_golden). Usage: check_golden GOLDEN_DIR
#include <cmath>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "sta/attention.hpp"
#include "sta/json.hpp"
#include "sta/npy.hpp"

namespace {

// The port under test: gets q, k, v [B,H,S,D] and the problem, writes out and lse.
void my_kernel(const sta::AttentionShape& shape, const sta::AttentionOptions& options,
               const std::vector<float>& q, const std::vector<float>& k,
               const std::vector<float>& v, std::vector<float>* out, std::vector<float>* lse) {
  out->resize(q.size());
  lse->resize(static_cast<size_t>(shape.batch * shape.heads * shape.seq));
  sta::attention(shape, options, q.data(), k.data(), v.data(), out->data(), lse->data(),
                 sta::Backend::kSta);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s GOLDEN_DIR\n", argv[0]);
    return 2;
  }
  try {
    const std::string dir = argv[1];
    const sta::JsonValue m = sta::read_json_file(dir + "/manifest.json");
    const std::string w = "manifest";
    sta::AttentionShape shape;
    shape.batch = m.at("shape", w).at("B", w).as_int(w);
    shape.heads = m.at("shape", w).at("H", w).as_int(w);
    shape.seq = m.at("shape", w).at("S", w).as_int(w);
    shape.dim = m.at("shape", w).at("D", w).as_int(w);
    sta::AttentionOptions options;
    auto extent = [&](const char* key) {
      const auto& a = m.at(key, w).array;
      return sta::Extent3{a.at(0).as_int(w), a.at(1).as_int(w), a.at(2).as_int(w)};
    };
    options.geometry.canvas = extent("video");
    options.geometry.tile = extent("tile");
    options.geometry.text_length = m.at("text_length", w).as_int(w);
    options.geometry.text_pad = m.at("text_pad", w).as_int(w);
    options.geometry.ragged = m.has("ragged") && m.at("ragged", w).boolean;  // shorter edge tiles
    options.layout = sta::parse_layout(m.at("layout", w).as_string(w), w);
    options.scale = m.at("scale", w).as_number(w);
    options.masks.clear();
    for (const auto& s : m.at("masks", w).array) options.masks.push_back(sta::parse_mask(s.as_string(w)));

    const auto q = sta::read_npy(dir + "/q.npy", "q"), k = sta::read_npy(dir + "/k.npy", "k"),
               v = sta::read_npy(dir + "/v.npy", "v");
    std::vector<float> out, lse;
    my_kernel(shape, options, q.data, k.data, v.data, &out, &lse);

    bool ok = true;
    for (const char* name : {"out", "lse"}) {
      const auto gold = sta::read_npy(dir + "/" + name + ".npy", name);
      const std::vector<float>& mine = std::string(name) == "out" ? out : lse;
      const double atol = m.at("tolerances", w).at(name, w).at("atol", w).as_number(w);
      double worst = 0;
      size_t bad = 0;
      for (size_t i = 0; i < mine.size(); ++i) {
        const double e = std::fabs(double(mine[i]) - gold.data[i]);
        worst = std::max(worst, e);
        bad += !(e <= atol);
      }
      std::printf("%s: max abs error %.3g, %zu of %zu above atol %g\n", name, worst, bad,
                  mine.size(), atol);
      ok = ok && bad == 0;
    }
    std::printf("%s\n", ok ? "port agrees with the golden outputs" : "port DISAGREES with the golden outputs");
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "check_golden: %s\n", e.what());
    return 2;
  }
}

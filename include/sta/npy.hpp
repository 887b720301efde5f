#pragma once
// NumPy .npy files (format 1.0 written; 1.0, 2.0 and 3.0 read), the tool's exchange format
// with PyTorch / FastVideo golden files. Only little-endian float arrays in C order: float32
// ('<f4'), float16 ('<f2', widened exactly) and float64 ('<f8', rounded to nearest float32).
// Every malformed byte string is reported with sta::Error; nothing here trusts the header.
#include <cstdint>
#include <string>
#include <vector>

#include "sta/file_io.hpp"

namespace sta {

/// Largest array the reader and writer accept, in elements (2^34, 64 GiB of float32): a
/// bound that rejects absurd shapes long before any allocation.
constexpr int64_t kMaxNpyElements = int64_t{1} << 34;
/// Most dimensions an .npy shape may have (NumPy 2 allows 64).
constexpr int kMaxNpyDims = 64;

/// An array read from an .npy file, widened to float32 in C (row-major) order.
struct NpyArray {
  std::vector<int64_t> shape;  ///< extents, outermost first; empty for a 0-d scalar
  std::vector<float> data;     ///< product(shape) values
  std::string dtype;           ///< dtype of the file: "<f4", "<f2" or "<f8"

  /// Number of elements: the product of `shape` (1 for a 0-d array).
  int64_t elements() const { return static_cast<int64_t>(data.size()); }
};

/// "[2, 3, 4]": a shape as the tools print it in messages.
std::string shape_to_string(const std::vector<int64_t>& shape);

/// Parses the bytes of an .npy file (format 1.0, 2.0 or 3.0; dtype '<f4', '<f2' or '<f8';
/// C order). Throws sta::Error whose message starts with `arg` and says what was expected on
/// a bad magic, an unsupported version, dtype (any byte order but '<', e.g. '>f8' or '=f4',
/// is refused by name, never read as little-endian) or Fortran order, a malformed header dict, a
/// shape that is negative, overflows or exceeds kMaxNpyElements, or data that is shorter or
/// longer than the header says. Never crashes; allocates only for data actually present.
NpyArray read_npy_bytes(const std::string& bytes, const std::string& arg);

/// Reads the .npy file at `path` with the checks of read_npy_bytes(); error messages name
/// `arg` (e.g. "--q") and the path. The file size is checked against the header before the
/// data is allocated, so a lying header cannot trigger a huge allocation.
NpyArray read_npy(const std::string& path, const std::string& arg);

/// A read-only float32 view of an .npy file, for inputs too large to copy: a little-endian
/// float32 C-order file is memory-mapped (MAP_POPULATE: no copy, no zero-fill, no page fault
/// per 4 KiB page later; the page cache pages are the data), other dtypes are read and
/// widened as read_npy() does. The same checks and messages as read_npy(). The file must not
/// be truncated while the view lives (a mapped page past the end would raise SIGBUS).
class NpyView {
 public:
  NpyView() = default;
  NpyView(NpyView&& o) noexcept;
  NpyView& operator=(NpyView&& o) noexcept;
  NpyView(const NpyView&) = delete;
  NpyView& operator=(const NpyView&) = delete;
  ~NpyView();

  std::vector<int64_t> shape;  ///< extents, outermost first
  std::string dtype;           ///< dtype of the file: "<f4", "<f2" or "<f8"
  const float* data() const { return data_; }
  int64_t elements() const { return elements_; }
  bool mapped() const { return map_ != nullptr; }  ///< true when no copy was made

 private:
  friend NpyView view_npy(const std::string& path, const std::string& arg);
  const float* data_ = nullptr;
  int64_t elements_ = 0;
  void* map_ = nullptr;
  size_t map_bytes_ = 0;
  std::vector<float> owned_;  ///< widened data of a float16/float64 file
};

/// Opens `path` as an NpyView (see above); errors name `arg` and the path.
NpyView view_npy(const std::string& path, const std::string& arg);

/// What one pass over float data finds: non-finite values (count, first flat index or -1)
/// and the largest magnitude among the finite ones. OpenMP-parallel, same result for any
/// thread count.
struct FloatScan {
  int64_t nonfinite = 0;
  int64_t first_nonfinite = -1;
  double max_abs_finite = 0.0;
};
FloatScan scan_floats(const float* data, int64_t n);

/// Throws sta::Error naming `arg` if `scan` found a NaN or an infinity in `data` (of
/// `shape`): the message gives the first one (flat index and multi-index), its value and how
/// many there are.
void check_finite(const float* data, const std::vector<int64_t>& shape, const FloatScan& scan,
                  const std::string& arg);

/// Throws sta::Error naming `arg` if `array` holds a NaN or an infinity: the message gives
/// the first such element (flat index and multi-index), its value and how many there are.
void check_finite(const NpyArray& array, const std::string& arg);

/// The header of a format-1.0 float32 ('<f4', C order) .npy file of `shape`: magic,
/// version, header length and the dict, padded with spaces and a final '\n' so that the
/// data starts at a multiple of 64 bytes. The data (product(shape) little-endian floats)
/// follows it directly. Does not check the shape (npy_bytes and write_npy do).
std::string npy_header(const std::vector<int64_t>& shape);

/// The complete bytes of a format-1.0 float32 ('<f4', C order) .npy file holding
/// product(shape) values from `data`: magic, version, header length, the dict padded with
/// spaces and a final '\n' so that data starts at a multiple of 64 bytes. Bit-exact
/// (NaN payloads and signed zeros survive). Throws sta::Error on an invalid shape.
std::string npy_bytes(const float* data, const std::vector<int64_t>& shape);

/// Writes npy_bytes(data, shape) to `path` atomically: a temporary file in the same folder,
/// then a rename, so readers never see a half-written file. Refuses to replace an existing
/// file unless `force`, and never replaces anything but a regular file (no devices, folders). Throws sta::Error naming `arg` and the path on any failure (and
/// leaves no temporary file behind).
void write_npy(const std::string& path, const float* data, const std::vector<int64_t>& shape,
               bool force, const std::string& arg);

/// A float32 .npy file of `shape` written in pieces, in order (one head's [S, D] plane at a
/// time, say), so that no whole tensor need be held: the header at construction, then
/// append() until product(shape) values are in, then commit() publishes it atomically
/// (AtomicFile: a writer destroyed before that, by an error on the way, leaves no file). The
/// same bytes as write_npy(). Refuses an existing file unless `force`; errors name `arg` and
/// the path.
class NpyWriter {
 public:
  NpyWriter(const std::string& path, const std::vector<int64_t>& shape, bool force,
            const std::string& arg);
  /// The next `n` values (at most what the shape has left).
  void append(const float* data, int64_t n);
  /// Publishes the file; every value of the shape must have been appended.
  void commit();

 private:
  AtomicFile file_;
  int64_t left_ = 0;  ///< values still to append
};

/// IEEE 754 binary16 bits to float32, exact for every input: subnormals, signed zeros,
/// infinities and NaNs (payload kept in the top mantissa bits).
float fp16_to_float(uint16_t bits);

}  // namespace sta

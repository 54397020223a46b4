// PNG through libpng, transformed to 8-bit RGB as PIL's Image.open(path).convert("RGB"): palettes expanded (their
// transparency ignored), gray replicated, alpha dropped without compositing, 16-bit samples cut to the high byte
// (PIL's "RGB;16B" raw mode), sub-byte gray scaled to 0..255. No gamma correction (PIL applies none). A bad CRC
// in any chunk is an error, as PIL raises "broken PNG file".
#include <png.h>

#include <csetjmp>
#include <cstring>
#include <memory>

#include "core/error.h"
#include "vision/image.h"

namespace ht::vision {

namespace {

// Everything the read touches lives here, on the heap: libpng reports errors by longjmp, which must not skip
// the destructor of anything created after setjmp.
struct PngRead {
  const std::vector<uint8_t>* bytes = nullptr;
  size_t pos = 0;
  char message[256] = "";
  Image image;
  std::vector<png_bytep> rows;
};

void on_error(png_structp png, png_const_charp msg) {
  auto* r = static_cast<PngRead*>(png_get_error_ptr(png));
  std::snprintf(r->message, sizeof r->message, "%s", msg);
  png_longjmp(png, 1);
}

void on_warning(png_structp, png_const_charp) {}

void on_read(png_structp png, png_bytep out, png_size_t n) {
  auto* r = static_cast<PngRead*>(png_get_io_ptr(png));
  if (r->pos + n > r->bytes->size()) png_error(png, "the file ends early (truncated)");
  std::memcpy(out, r->bytes->data() + r->pos, n);
  r->pos += n;
}

// Returns false (with r.message set) when libpng reported an error.
bool read_png(PngRead& r) {
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &r, on_error, on_warning);
  if (!png) {
    std::snprintf(r.message, sizeof r.message, "libpng could not start");
    return false;
  }
  png_infop info = png_create_info_struct(png);
  if (!info || setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
    if (!r.message[0]) std::snprintf(r.message, sizeof r.message, "libpng could not start");
    return false;
  }
  png_set_read_fn(png, &r, on_read);
  png_set_crc_action(png, PNG_CRC_ERROR_QUIT, PNG_CRC_ERROR_QUIT);
  png_read_info(png, info);
  png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
  int color = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
  // 16-bit gray opens in PIL as mode "I;16", whose conversion to RGB clamps each value to 255 (not its high
  // byte): read it as 16 bits and clamp below.
  bool gray16 = color == PNG_COLOR_TYPE_GRAY && depth == 16;
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (depth == 16 && !gray16) png_set_strip_16(png);
  // A palette's tRNS chunk becomes an alpha channel on expansion; PIL ignores it in convert("RGB").
  if (color & PNG_COLOR_MASK_ALPHA || (color == PNG_COLOR_TYPE_PALETTE && png_get_valid(png, info, PNG_INFO_tRNS)))
    png_set_strip_alpha(png);
  if (!gray16 && (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA)) png_set_gray_to_rgb(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  if (png_get_rowbytes(png, info) != size_t(w) * (gray16 ? 2 : 3))
    png_error(png, "unexpected row layout after conversion to RGB");
  r.image = Image::uninitialized(w, h);
  r.rows.resize(h);
  // A 16-bit gray row (2 bytes a pixel) fits in the first two thirds of its RGB row; it is widened in place below.
  for (png_uint_32 y = 0; y < h; ++y) r.rows[y] = r.image.row(y);
  png_read_image(png, r.rows.data());
  if (gray16) {
    for (png_uint_32 y = 0; y < h; ++y) {
      uint8_t* row = r.image.row(y);
      for (png_uint_32 x = w; x-- > 0;) {  // right to left: the RGB pixel x overwrites only gray pixels >= x
        unsigned v = unsigned(row[2 * x]) << 8 | row[2 * x + 1];
        uint8_t g = uint8_t(v > 255 ? 255 : v);
        row[3 * x] = row[3 * x + 1] = row[3 * x + 2] = g;
      }
    }
  }
  png_read_end(png, nullptr);
  png_destroy_read_struct(&png, &info, nullptr);
  return true;
}

}  // namespace

Image decode_png(const std::vector<uint8_t>& bytes, const std::string& path) {
  auto r = std::make_unique<PngRead>();
  r->bytes = &bytes;
  if (!read_png(*r)) fail_io("[decode_png] ", path, " is a corrupt or truncated PNG: ", r->message);
  return std::move(r->image);
}

}  // namespace ht::vision

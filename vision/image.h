// ht::vision::Image: an 8-bit RGB image in memory, rows of interleaved R, G, B (PIL's mode "RGB", which the
// transforms before ToTensor work on, as torchvision's do on PIL images).
#pragma once
#include <cstdint>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

namespace ht::vision {

// std::allocator, except that a vector grown without a value leaves the bytes as they are instead of zeroing them:
// decoders and resampling write every pixel anyway, and zeroing half a megabyte per photo shows in a loader's time.
template <class T>
struct DefaultInitAllocator : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = DefaultInitAllocator<U>;
  };
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

struct Image {
  int64_t width = 0, height = 0;
  std::vector<uint8_t, DefaultInitAllocator<uint8_t>> pixels;  // height * width * 3, row-major, RGB

  Image() = default;
  Image(int64_t w, int64_t h) : width(w), height(h), pixels(size_t(w * h * 3), 0) {}  // black
  // Pixels not set: for code that writes every one of them.
  static Image uninitialized(int64_t w, int64_t h) {
    Image img;
    img.width = w;
    img.height = h;
    img.pixels.resize(size_t(w * h * 3));
    return img;
  }
  uint8_t* row(int64_t y) { return pixels.data() + size_t(y * width * 3); }
  const uint8_t* row(int64_t y) const { return pixels.data() + size_t(y * width * 3); }
};

// The crop box torchvision's transforms use: top row, left column, height, width.
struct Box {
  int64_t top = 0, left = 0, height = 0, width = 0;
};

// Decodes a JPEG or PNG file (told apart by its first bytes, not its name) into RGB as PIL's
// Image.open(path).convert("RGB") does: grayscale replicated, palettes expanded, alpha dropped (not composited),
// 16-bit samples cut to their high byte. A file that is empty, truncated, corrupt or neither format is an error
// naming the file. `min_width`/`min_height` > 0 allow a JPEG to be decoded at 1/2, 1/4 or 1/8 scale in the DCT
// domain (libjpeg-turbo's scaled decode, PIL's draft mode) as long as the result stays at least that large; the
// pixels then differ from PIL's full decode, so only the augmenting training pipeline asks for it.
Image decode_image(const std::string& path, int64_t min_width = 0, int64_t min_height = 0);
Image decode_jpeg(const std::vector<uint8_t>& bytes, const std::string& path, int64_t min_width = 0,
                  int64_t min_height = 0);
Image decode_png(const std::vector<uint8_t>& bytes, const std::string& path);

// A JPEG file read into memory, with its size from the header, not yet decoded. ImageFolder hands one to the
// transforms when its options ask for draft decoding, so that RandomResizedCrop can draw its box on the full-size
// image (torchvision's distribution) and then decode at the smallest DCT scale that keeps the box at least its
// output size; any other transform decodes it in full first.
struct EncodedJpeg {
  std::string path;
  std::vector<uint8_t> bytes;
  int64_t width = 0, height = 0;
};

// The file's bytes: empty, unreadable or unknown files are errors naming the file, as in decode_image.
std::vector<uint8_t> read_image_file(const std::string& path);
bool is_jpeg(const std::vector<uint8_t>& bytes);
// The width and height in a JPEG's header (an error naming the file when there is no readable header).
std::pair<int64_t, int64_t> jpeg_size(const std::vector<uint8_t>& bytes, const std::string& path);
// Decodes bytes already read from `path` (JPEG or PNG by signature).
Image decode_image_bytes(const std::vector<uint8_t>& bytes, const std::string& path, int64_t min_width = 0,
                         int64_t min_height = 0);

}  // namespace ht::vision

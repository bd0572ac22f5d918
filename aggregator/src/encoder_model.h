#pragma once

// The loaded model: the memory-mapped PPENC001 file, the dense weights packed for the chosen
// kernels, and the vocabulary.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "encoder_kernels.h"

namespace painpoint::aggregator::encoder {

struct FreeDeleter {
  void operator()(float* p) const;
};

class MappedFile {
 public:
  MappedFile() = default;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();
  // Returns an error message, empty on success.
  [[nodiscard]] std::string open(const std::string& path);
  [[nodiscard]] const char* data() const { return static_cast<const char*>(data_); }
  [[nodiscard]] std::size_t size() const { return size_; }
  // Drops [begin, end) from the process's resident pages (it stays in the page cache).
  void release(std::size_t begin, std::size_t end) const;

 private:
  void* data_ = nullptr;
  std::size_t size_ = 0;
};

struct Model {
  MappedFile file;
  std::vector<std::string_view> vocab;           // into `file`
  std::unique_ptr<float[], FreeDeleter> packed;  // packed dense weights and fused biases
  std::vector<LayerWeights> layers;
  Weights weights{};
  const Kernels* kernels = nullptr;
  std::size_t max_tokens = 0;  // per text, [CLS] and [SEP] included
};

// Loads `path` into `model`; returns an error message (empty on success) and whether the
// failure is that the file cannot be opened.
struct ModelStatus {
  std::string error;
  bool cannot_open = false;
};
[[nodiscard]] ModelStatus load_model(const std::string& path, Model& model);

}  // namespace painpoint::aggregator::encoder

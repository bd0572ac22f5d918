// Writes the stored vector of each text, as the aggregator sees it, for offline analysis
// (tests/quality/oracle.py): texts one per line on stdin, n x 384 float32 (little endian) to the
// file named by the first argument. The weights come from $PAINPOINT_ENCODER or
// default_encoder_path().
//
// Usage: encode_texts OUT.f32 < texts.txt
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <span>
#include <string>
#include <vector>

#include "painpoint/aggregator/encoder.h"

namespace {

using painpoint::aggregator::SentenceEncoder;

// The vector the store keeps (quantized, then read back), not the encoder's own floats.
std::vector<float> stored_vectors(const std::vector<float>& encoded, std::size_t n) {
  std::vector<float> out(encoded.size());
  for (std::size_t i = 0; i < n; ++i) {
    const std::span<const float> v(encoded.data() + i * SentenceEncoder::kDims,
                                   SentenceEncoder::kDims);
    const auto packed = painpoint::aggregator::pack_embedding(v);
    if (!painpoint::aggregator::unpack_embedding(
            packed, std::span<float>(out.data() + i * SentenceEncoder::kDims,
                                     SentenceEncoder::kDims))) {
      std::fprintf(stderr, "text %zu: the stored form does not read back\n", i + 1);
      std::exit(1);
    }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: encode_texts OUT.f32 < texts.txt\n");
    return 2;
  }
  const char* env = std::getenv("PAINPOINT_ENCODER");
  const std::string path = env != nullptr ? env : painpoint::aggregator::default_encoder_path();
  auto loaded = painpoint::aggregator::load_sentence_encoder(path);
  if (!loaded.encoder) {
    std::fprintf(stderr, "cannot load the encoder from %s\n", path.c_str());
    return 1;
  }
  std::vector<std::string> texts;
  for (std::string line; std::getline(std::cin, line);) texts.push_back(line);
  const std::vector<std::string_view> views(texts.begin(), texts.end());
  std::vector<float> encoded(texts.size() * SentenceEncoder::kDims);
  if (!loaded.encoder->encode(views, encoded, 2)) {
    std::fprintf(stderr, "encoding failed\n");
    return 1;
  }
  const std::vector<float> out = stored_vectors(encoded, texts.size());
  std::ofstream file(argv[1], std::ios::binary);
  file.write(reinterpret_cast<const char*>(out.data()),
             static_cast<std::streamsize>(out.size() * sizeof(float)));
  if (!file) {
    std::fprintf(stderr, "cannot write %s\n", argv[1]);
    return 1;
  }
  return 0;
}

#pragma once

// The board's built files, embedded into the binary by the build (service/board/embed_assets.py
// generates the definition from vite's output).

#include <span>
#include <string_view>

namespace painpoint::service {

struct BoardAsset {
  std::string_view path;          // "/index.html", "/assets/index-<hash>.js"
  std::string_view content_type;  // with charset for text
  std::string_view identity;      // the bytes as built
  std::string_view gzip;          // the same, gzipped
  bool immutable = false;         // content-hashed name: cacheable forever
};

std::span<const BoardAsset> board_assets();

}  // namespace painpoint::service

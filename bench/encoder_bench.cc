// Throughput of the sentence encoder on short support texts.
//
// Usage: encoder_bench [CSV] [TEXTS]
//   CSV    a file whose lines are "text,label" (default ../shared/data/banking77/train.csv, read
//          at run time, never copied), TEXTS how many of its texts to encode per configuration
//          (default 2048). The weights come from $PAINPOINT_ENCODER or default_encoder_path().
// Prints, for 1 and 2 threads and batches of 1, 32 and 128 texts: texts/s, µs per token, and the
// process's peak RSS with the RSS before loading the encoder.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "painpoint/aggregator/encoder.h"

namespace {

using painpoint::aggregator::SentenceEncoder;

// CPU seconds (user and system) this process has used so far: with other work on the machine,
// texts per CPU second is steadier than texts per wall second.
double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// Peak resident set so far, in MiB.
double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

// Current resident set, in MiB (from /proc/self/statm).
double rss_mib() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0;
  long resident = 0;
  statm >> pages >> resident;
  return static_cast<double>(resident) * 4096.0 / (1024.0 * 1024.0);
}

// The text column of a "text,label" CSV; quoted fields keep their commas.
std::vector<std::string> read_texts(const std::string& path, std::size_t limit) {
  std::ifstream in(path);
  std::vector<std::string> texts;
  std::string line;
  std::getline(in, line);  // header
  while (texts.size() < limit && std::getline(in, line)) {
    std::string text;
    if (!line.empty() && line[0] == '"') {
      const std::size_t end = line.rfind("\",");
      text = line.substr(1, end == std::string::npos ? std::string::npos : end - 1);
    } else {
      text = line.substr(0, line.rfind(','));
    }
    if (!text.empty()) texts.push_back(std::move(text));
  }
  return texts;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string csv = argc > 1 ? argv[1] : "../shared/data/banking77/train.csv";
  const std::size_t count = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 2048;
  const std::vector<std::string> texts = read_texts(csv, count);
  if (texts.empty()) {
    std::fprintf(stderr, "encoder_bench: no texts in %s\n", csv.c_str());
    return 1;
  }
  const double rss_before = rss_mib();
  const char* env = std::getenv("PAINPOINT_ENCODER");
  const std::string path =
      env != nullptr && *env != '\0' ? env : painpoint::aggregator::default_encoder_path();
  const auto loaded = painpoint::aggregator::load_sentence_encoder(path);
  if (!loaded.encoder) {
    std::fprintf(stderr, "encoder_bench: %s (run scripts/fetch-encoder.sh)\n",
                 loaded.detail.c_str());
    return 1;
  }
  const SentenceEncoder& encoder = *loaded.encoder;
  std::size_t tokens = 0;
  for (const std::string& t : texts) tokens += encoder.tokenize(t).size();
  std::printf("%zu texts, %.1f tokens per text ([CLS] and [SEP] included), kernel %s\n",
              texts.size(), static_cast<double>(tokens) / static_cast<double>(texts.size()),
              std::string(encoder.kernel()).c_str());
  std::printf("RSS after loading: %.1f MiB (%.1f MiB before)\n", rss_mib(), rss_before);

  const std::vector<std::string_view> views(texts.begin(), texts.end());
  std::vector<float> out(views.size() * SentenceEncoder::kDims);
  for (const unsigned threads : {1U, 2U}) {
    for (const std::size_t batch : {std::size_t{1}, std::size_t{32}, std::size_t{128}}) {
      const auto start = std::chrono::steady_clock::now();
      const double cpu_start = cpu_seconds();
      for (std::size_t b = 0; b < views.size(); b += batch) {
        const std::size_t n = std::min(batch, views.size() - b);
        if (!encoder.encode({views.data() + b, n},
                            {out.data() + b * SentenceEncoder::kDims, n * SentenceEncoder::kDims},
                            threads)) {
          return 1;
        }
      }
      const double s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const double cpu = cpu_seconds() - cpu_start;
      std::printf(
          "threads %u batch %3zu: %7.1f texts/s, %6.2f µs per token, %7.1f texts per CPU s\n",
          threads, batch, static_cast<double>(views.size()) / s,
          s * 1e6 / static_cast<double>(tokens), static_cast<double>(views.size()) / cpu);
    }
  }
  std::printf("peak RSS: %.1f MiB (%.1f MiB before loading)\n", peak_rss_mib(), rss_before);
  // Where the resident memory is now: anonymous (packed weights, scratch) or the mapped file.
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("RssAnon", 0) == 0 || line.rfind("RssFile", 0) == 0) {
      std::printf("%s\n", line.c_str());
    }
  }
  return 0;
}

#include "encoder_model.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace painpoint::aggregator::encoder {

void FreeDeleter::operator()(float* p) const { std::free(p); }

MappedFile::~MappedFile() {
  if (data_ != nullptr) munmap(data_, size_);
}

std::string MappedFile::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "cannot open " + path + ": " + std::strerror(errno);
  struct stat st {};
  if (fstat(fd, &st) != 0 || st.st_size <= 0) {
    ::close(fd);
    return "cannot read " + path;
  }
  void* p = mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) return "cannot map " + path + ": " + std::strerror(errno);
  data_ = p;
  size_ = static_cast<std::size_t>(st.st_size);
  return {};
}

void MappedFile::release(std::size_t begin, std::size_t end) const {
  const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  begin = (begin + page - 1) / page * page;
  end = end / page * page;
  if (end > begin) {
    // Advisory: on failure the pages merely stay resident.
    (void)madvise(static_cast<char*>(data_) + begin, end - begin, MADV_DONTNEED);
  }
}

const Kernels& select_kernels() {
  const char* forced = std::getenv("PAINPOINT_ENCODER_KERNEL");
  const std::string_view want = forced != nullptr ? forced : "";
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                    __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2");
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") &&
                      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512cd");
  const bool bf16 = avx512 && __builtin_cpu_supports("avx512bf16");
  if (want == "sse2") return kernels_sse2();
  if (bf16 && (want.empty() || want == "avx512_bf16")) return kernels_avx512_bf16();
  if (avx512 && want != "avx2") return kernels_avx512();
  if (avx2) return kernels_avx2();
  return kernels_sse2();
}

namespace {

constexpr char kMagic[] = "PPENC001";
constexpr std::uint32_t kFormatVersion = 1;
constexpr std::size_t kAlign = 64;

struct Header {
  std::uint32_t version, vocab, hidden, layers, heads, ffn, max_positions, max_tokens, vocab_bytes;
};

std::size_t align_up(std::size_t x) { return (x + kAlign - 1) / kAlign * kAlign; }

// Walks the tensors in file order, checking that each lies inside the file.
class TensorReader {
 public:
  TensorReader(const MappedFile& file, std::size_t offset) : file_(file), offset_(offset) {}
  const float* next(std::size_t floats) {
    offset_ = align_up(offset_);
    if (offset_ + floats * sizeof(float) > file_.size()) {
      ok_ = false;
      return nullptr;
    }
    const auto* p = reinterpret_cast<const float*>(file_.data() + offset_);
    offset_ += floats * sizeof(float);
    return p;
  }
  [[nodiscard]] bool ok() const { return ok_; }
  [[nodiscard]] std::size_t end() const { return align_up(offset_); }

 private:
  const MappedFile& file_;
  std::size_t offset_;
  bool ok_ = true;
};

std::string check_header(const Header& h) {
  if (h.version != kFormatVersion) return "unsupported format version " + std::to_string(h.version);
  if (h.hidden != kHidden || h.heads != kHeads || h.ffn != kFfn) {
    return "unsupported shape (hidden " + std::to_string(h.hidden) + ", heads " +
           std::to_string(h.heads) + ", ffn " + std::to_string(h.ffn) + ")";
  }
  if (h.layers == 0 || h.layers > 48 || h.vocab < 4 || h.max_tokens < 2 ||
      h.max_tokens > kMaxTokens || h.max_tokens > h.max_positions) {
    return "bad header";
  }
  return {};
}

std::string read_vocab(const MappedFile& f, const Header& h, std::size_t offset, Model& model) {
  if (offset + h.vocab_bytes > f.size()) return "truncated vocabulary";
  std::string_view blob(f.data() + offset, h.vocab_bytes);
  model.vocab.reserve(h.vocab);
  while (model.vocab.size() < h.vocab) {
    const std::size_t nl = blob.find('\n');
    model.vocab.push_back(blob.substr(0, nl));
    if (nl == std::string_view::npos) break;
    blob.remove_prefix(nl + 1);
  }
  if (model.vocab.size() != h.vocab || blob.find('\n') != std::string_view::npos) {
    return "vocabulary has " + std::to_string(model.vocab.size()) + " tokens, header says " +
           std::to_string(h.vocab);
  }
  return {};
}

// Packs one layer's dense weights into `dst` (advanced past them) and fills `l`.
void pack_layer(const Kernels& k, TensorReader& in, float*& dst, LayerWeights& l) {
  constexpr std::size_t hh = kHidden * kHidden;
  const std::size_t packed_hh = hh * k.weight_bytes / sizeof(float);  // in floats
  float* qkv_w = dst;
  float* qkv_b = dst + 3 * packed_hh;
  dst += 3 * packed_hh + 3 * kHidden;
  for (std::size_t i = 0; i < 3; ++i) {
    const float* w = in.next(hh);
    const float* b = in.next(kHidden);
    if (!in.ok()) return;
    k.pack(w, kHidden, kHidden, qkv_w + i * packed_hh);
    std::memcpy(qkv_b + i * kHidden, b, kHidden * sizeof(float));
  }
  l.qkv_w = qkv_w;
  l.qkv_b = qkv_b;
  auto dense = [&](std::size_t n, std::size_t kk, const float*& w, const float*& b) {
    const float* src = in.next(n * kk);
    b = in.next(n);
    if (!in.ok()) return;
    k.pack(src, n, kk, dst);
    w = dst;
    dst += n * kk * k.weight_bytes / sizeof(float);
  };
  dense(kHidden, kHidden, l.attn_out_w, l.attn_out_b);
  l.ln1_w = in.next(kHidden);
  l.ln1_b = in.next(kHidden);
  dense(kFfn, kHidden, l.ffn_in_w, l.ffn_in_b);
  dense(kHidden, kFfn, l.ffn_out_w, l.ffn_out_b);
  l.ln2_w = in.next(kHidden);
  l.ln2_b = in.next(kHidden);
}

}  // namespace

ModelStatus load_model(const std::string& path, Model& model) {
  if (std::string e = model.file.open(path); !e.empty()) return {std::move(e), true};
  const MappedFile& f = model.file;
  Header h{};
  if (f.size() < 8 + sizeof(h) || std::memcmp(f.data(), kMagic, 8) != 0) {
    return {path + ": not a PPENC001 file"};
  }
  std::memcpy(&h, f.data() + 8, sizeof(h));
  if (std::string e = check_header(h); !e.empty()) return {path + ": " + e};
  if (std::string e = read_vocab(f, h, 8 + sizeof(h), model); !e.empty()) return {path + ": " + e};

  TensorReader in(f, 8 + sizeof(h) + h.vocab_bytes);
  Weights& w = model.weights;
  w.word = in.next(static_cast<std::size_t>(h.vocab) * kHidden);
  w.position = in.next(static_cast<std::size_t>(h.max_positions) * kHidden);
  w.token_type = in.next(kHidden);
  w.ln_w = in.next(kHidden);
  w.ln_b = in.next(kHidden);
  const std::size_t layers_begin = in.end();
  constexpr std::size_t per_layer = 4 * kHidden * kHidden + 3 * kHidden + 2 * kHidden * kFfn;
  model.packed.reset(static_cast<float*>(
      std::aligned_alloc(kAlign, align_up(per_layer * h.layers * sizeof(float)))));
  if (!model.packed) return {path + ": out of memory"};
  model.kernels = &select_kernels();
  model.layers.resize(h.layers);
  float* dst = model.packed.get();
  for (LayerWeights& l : model.layers) pack_layer(*model.kernels, in, dst, l);
  if (!in.ok() || in.end() != f.size()) {
    return {path + ": bad size (" + std::to_string(f.size()) + " bytes, the header implies " +
            std::to_string(in.end()) + ")"};
  }
  // The layers' original weights were only read to pack them.
  f.release(layers_begin, f.size());
  model.max_tokens = h.max_tokens;
  w.layers = model.layers.data();
  w.num_layers = model.layers.size();
  return {};
}

}  // namespace painpoint::aggregator::encoder

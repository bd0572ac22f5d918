// The clustering record of a data directory: what it holds, and which changes serve refuses.
#include "clustering_identity.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>

#include "painpoint/store/store.h"

namespace painpoint::service {
namespace {

namespace agg = painpoint::aggregator;

std::filesystem::path write_file(const std::string& name, const std::string& content) {
  const auto path = std::filesystem::path(testing::TempDir()) / name;
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

std::string describe(const agg::ClusterConfig& config, const ClusteringFiles& files) {
  std::string error;
  auto text = describe_clustering(config, files, &error);
  EXPECT_TRUE(text.has_value()) << error;
  return text.value_or("");
}

TEST(ClusteringIdentity, NamesTheModeTheFileDigestAndEveryKey) {
  agg::ClusterConfig config;
  config.encoder = agg::EncoderMode::kSemantic;
  const std::string text = describe(config, {write_file("encoder-a", "abc"), {}});
  // SHA-256("abc"), so operators can compare the record with `sha256sum`.
  EXPECT_NE(text.find("encoder = semantic\nencoder_sha256 = "
                      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("\nsemantic_merge = "), std::string::npos) << text;
  EXPECT_EQ(text.find("word_vectors_sha256"), std::string::npos) << text;
}

TEST(ClusteringIdentity, StaticWithoutWordVectorsSaysNone) {
  agg::ClusterConfig config;
  config.encoder = agg::EncoderMode::kStatic;
  EXPECT_NE(describe(config, {}).find("word_vectors_sha256 = none\n"), std::string::npos);
}

TEST(ClusteringIdentity, UnreadableFileIsAnError) {
  agg::ClusterConfig config;
  config.encoder = agg::EncoderMode::kSemantic;
  std::string error;
  EXPECT_FALSE(describe_clustering(config, {"/nonexistent/encoder.bin", {}}, &error));
  EXPECT_NE(error.find("/nonexistent/encoder.bin"), std::string::npos) << error;
}

TEST(ClusteringIdentity, ThresholdsAreSettingsButEncodersFilesAndHashingAreNot) {
  agg::ClusterConfig config;
  config.encoder = agg::EncoderMode::kSemantic;
  const auto a = write_file("encoder-a", "abc");
  const auto b = write_file("encoder-b", "abd");
  const std::string base = describe(config, {a, {}});
  EXPECT_TRUE(compare_clustering(base, base).incompatible.empty());
  EXPECT_TRUE(compare_clustering(base, base).settings.empty());

  agg::ClusterConfig tuned = config;
  tuned.semantic_merge = 0.5;
  auto change = compare_clustering(base, describe(tuned, {a, {}}));
  EXPECT_TRUE(change.incompatible.empty());
  EXPECT_EQ(change.settings, std::vector<std::string>{"semantic_merge: 0.45 -> 0.5"});

  EXPECT_EQ(compare_clustering(base, describe(config, {b, {}})).incompatible.size(), 1u);

  agg::ClusterConfig hashed = config;
  hashed.hash_bits = 18;
  change = compare_clustering(base, describe(hashed, {a, {}}));
  EXPECT_EQ(change.incompatible, std::vector<std::string>{"hash_bits: 20 -> 18"});

  agg::ClusterConfig sparse;
  sparse.encoder = agg::EncoderMode::kSparse;
  change = compare_clustering(base, describe(sparse, {}));
  ASSERT_EQ(change.incompatible.size(), 2u);  // the mode, and the encoder file it no longer has
  EXPECT_EQ(change.incompatible[0], "encoder: semantic -> sparse");
}

// A directory from before the record: serve infers from the stored events whether the state was
// built with sentence vectors, and refuses the other kind of mode.
TEST(ClusteringIdentity, UnrecordedDirectoryIsJudgedByItsStoredVectors) {
  for (const bool with_vectors : {true, false}) {
    const auto dir = std::filesystem::path(testing::TempDir()) /
                     (with_vectors ? "unrecorded-semantic" : "unrecorded-static");
    std::filesystem::remove_all(dir);
    std::unique_ptr<store::Store> store;
    ASSERT_TRUE(store::Store::open(dir, {}, &store).ok());
    store::CommitBatch batch;
    auto& stored = batch.events.emplace_back();
    stored.mutable_event()->set_event_id("e-1");
    stored.mutable_event()->set_product_id("billing");
    stored.mutable_event()->set_text("charged twice");
    stored.mutable_event()->mutable_occurred_at()->set_seconds(1'780'000'000);
    if (with_vectors) stored.set_embedding(std::string(388, '\1'));
    ASSERT_TRUE(store->commit(batch).ok());

    agg::ClusterConfig semantic;
    semantic.encoder = agg::EncoderMode::kSemantic;
    agg::ClusterConfig sparse;
    sparse.encoder = agg::EncoderMode::kSparse;
    const std::string semantic_text = describe(semantic, {write_file("encoder-c", "abc"), {}});
    const std::string sparse_text = describe(sparse, {});
    const std::string& wrong = with_vectors ? sparse_text : semantic_text;
    const std::string& right = with_vectors ? semantic_text : sparse_text;
    EXPECT_FALSE(clustering_fits(*store, wrong, dir)) << with_vectors;
    EXPECT_TRUE(clustering_fits(*store, right, dir)) << with_vectors;
    std::optional<std::string> recorded;
    ASSERT_TRUE(store->clustering(&recorded).ok());
    EXPECT_EQ(recorded, right);
  }
}

}  // namespace
}  // namespace painpoint::service

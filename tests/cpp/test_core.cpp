#include <gtest/gtest.h>

#include "reset_native/build_info.hpp"
#include "reset_native/error.hpp"

TEST(Core, BuildInfoIsFilledIn) {
  const auto info = reset_native::build_info();
  EXPECT_FALSE(info.version.empty());
  EXPECT_GE(info.threads, 1);
  EXPECT_EQ(info.cuda_arch.empty(), !info.cuda_compiled);
}

TEST(Core, ErrorHierarchy) {
  EXPECT_THROW(reset_native::require(false, "x"), reset_native::InvalidArgument);
  EXPECT_NO_THROW(reset_native::require(true, "x"));
  try {
    throw reset_native::Unsupported("no device");
  } catch (const reset_native::Error& e) {  // every subclass is catchable as Error
    EXPECT_STREQ(e.what(), "no device");
  }
}

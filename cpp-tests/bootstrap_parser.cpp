/* nsexec_parse_bootstrap on valid messages: every attribute reaches the config. */
#include <sched.h>

#include <string>

#include "bootstrap_support.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

using namespace bootstrap_test;

namespace {

std::string text(const char *data, size_t length)
{
	return data == nullptr ? std::string() : std::string(data, length);
}

} // namespace

TEST(bootstrap, parses_every_attribute)
{
	uint32_t flags = CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWTIME;
	std::vector<uint8_t> message =
		NetlinkMessage()
			.add_u32(NSEXEC_CLONE_FLAGS_ATTR, flags)
			.add_text(NSEXEC_NS_PATHS_ATTR, "pid:/proc/42/ns/pid,mnt:/proc/42/ns/mnt,user:/proc/42/ns/user")
			.add_text(NSEXEC_UIDMAP_ATTR, "0 1000 1\n")
			.add_text(NSEXEC_GIDMAP_ATTR, "0 1000 1\n")
			.add_u8(NSEXEC_SETGROUP_ATTR, 1)
			.add_text(NSEXEC_OOM_SCORE_ADJ_ATTR, "-500")
			.add_u8(NSEXEC_ROOTLESS_EUID_ATTR, 1)
			.add_text(NSEXEC_UIDMAPPATH_ATTR, "/usr/bin/newuidmap")
			.add_text(NSEXEC_GIDMAPPATH_ATTR, "/usr/bin/newgidmap")
			.add_text(NSEXEC_TIMENSOFFSET_ATTR, "monotonic 1000 0\nboottime 1000 0\n")
			.encode();

	struct nsexec_config config;
	char error[512] = "";
	ASSERT_EQ(nsexec_parse_bootstrap(message.data(), message.size(), &config, error, sizeof(error)), 0) << error;

	EXPECT_EQ(config.clone_flags, flags);
	EXPECT_EQ(config.pidfd, -1);
	ASSERT_EQ(config.join_count, 3u);
	EXPECT_EQ(config.joins[0].flag, static_cast<uint32_t>(CLONE_NEWPID));
	EXPECT_STREQ(config.joins[0].path, "/proc/42/ns/pid");
	EXPECT_EQ(config.joins[0].fd, -1);
	EXPECT_EQ(config.joins[1].flag, static_cast<uint32_t>(CLONE_NEWNS));
	EXPECT_STREQ(config.joins[1].path, "/proc/42/ns/mnt");
	EXPECT_EQ(config.joins[2].flag, static_cast<uint32_t>(CLONE_NEWUSER));
	EXPECT_STREQ(config.joins[2].path, "/proc/42/ns/user");
	EXPECT_EQ(text(config.uid_map, config.uid_map_length), "0 1000 1\n");
	EXPECT_EQ(text(config.gid_map, config.gid_map_length), "0 1000 1\n");
	EXPECT_TRUE(config.setgroups_allowed);
	EXPECT_EQ(text(config.oom_score_adj, config.oom_score_adj_length), "-500");
	EXPECT_TRUE(config.rootless_euid);
	EXPECT_STREQ(config.uid_map_path, "/usr/bin/newuidmap");
	EXPECT_STREQ(config.gid_map_path, "/usr/bin/newgidmap");
	EXPECT_EQ(text(config.timens_offsets, config.timens_offsets_length), "monotonic 1000 0\nboottime 1000 0\n");
	EXPECT_FALSE(config.no_fork);

	nsexec_config_free(&config);
	EXPECT_EQ(config.paths_storage, nullptr);
}

TEST(bootstrap, parses_header_only_message)
{
	std::vector<uint8_t> message = NetlinkMessage().encode();
	struct nsexec_config config;
	char error[512] = "";
	ASSERT_EQ(nsexec_parse_bootstrap(message.data(), message.size(), &config, error, sizeof(error)), 0) << error;

	EXPECT_EQ(config.clone_flags, 0u);
	EXPECT_EQ(config.join_count, 0u);
	EXPECT_EQ(config.uid_map, nullptr);
	EXPECT_EQ(config.timens_offsets_length, 0u);
	nsexec_config_free(&config);
}

TEST(bootstrap, accepts_text_with_trailing_nul)
{
	/* C senders include the NUL, runc's Go side does not: both mean the same text. */
	std::vector<uint8_t> message = NetlinkMessage()
					       .add_string(NSEXEC_NS_PATHS_ATTR, "net:/run/netns/test")
					       .add_string(NSEXEC_UIDMAP_ATTR, "0 0 1")
					       .add_string(NSEXEC_UIDMAPPATH_ATTR, "/usr/bin/newuidmap")
					       .encode();
	struct nsexec_config config;
	char error[512] = "";
	ASSERT_EQ(nsexec_parse_bootstrap(message.data(), message.size(), &config, error, sizeof(error)), 0) << error;

	ASSERT_EQ(config.join_count, 1u);
	EXPECT_STREQ(config.joins[0].path, "/run/netns/test");
	EXPECT_EQ(text(config.uid_map, config.uid_map_length), "0 0 1");
	EXPECT_STREQ(config.uid_map_path, "/usr/bin/newuidmap");
	nsexec_config_free(&config);
}

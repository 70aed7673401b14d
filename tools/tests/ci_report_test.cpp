// The CI reporters: XML escaping, the JUnit document, the step summary.
#include "ci_report.hpp"

#include <gtest/gtest.h>

#include <string>

namespace pbm::guard {
namespace {

TEST(XmlEscape, EscapesTheFiveMarkupCharacters) {
  EXPECT_EQ(xml_escape("a<b>&\"c\"'d'"), "a&lt;b&gt;&amp;&quot;c&quot;&apos;d&apos;");
  EXPECT_EQ(xml_escape("&amp;"), "&amp;amp;");  // already-escaped text is text
  EXPECT_EQ(xml_escape(""), "");
}

TEST(XmlEscape, DropsCharactersXml10Forbids) {
  EXPECT_EQ(xml_escape(std::string("a\x01""b\x1b""c\x7f", 6)), "abc\x7f");  // DEL is allowed
  EXPECT_EQ(xml_escape(std::string("a\0b", 3)), "ab");
  EXPECT_EQ(xml_escape("tab\tlf\ncr\r"), "tab\tlf\ncr\r");
  EXPECT_EQ(xml_escape("x\xEF\xBF\xBEy\xEF\xBF\xBFz"), "xyz");  // U+FFFE, U+FFFF
  EXPECT_EQ(xml_escape("s\xED\xA0\x80t"), "st");                // a UTF-16 surrogate, U+D800
}

TEST(XmlEscape, KeepsUtf8AndReplacesBytesThatAreNot) {
  EXPECT_EQ(xml_escape("caf\xC3\xA9 \xE2\x86\x92 \xF0\x9F\x9A\x80"), "caf\xC3\xA9 \xE2\x86\x92 \xF0\x9F\x9A\x80");
  EXPECT_EQ(xml_escape("a\xFF" "b"), "a\xEF\xBF\xBD" "b");        // not UTF-8
  EXPECT_EQ(xml_escape("a\xC3"), "a\xEF\xBF\xBD");                // truncated
  EXPECT_EQ(xml_escape("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong '/'
}

LimitCheck limit(std::string range, Category c, std::string key, std::uint64_t lim, std::uint64_t seen) {
  return {range.empty() ? "overall" : "range " + range, range, c, key, lim, seen};
}

TEST(LimitName, IsThePathOfTheKeyInTheBudget) {
  EXPECT_EQ(limit_name(limit("", Category::sync, "total", 0, 0)), "sync.total");
  EXPECT_EQ(limit_name(limit("", Category::memcpy, "DtoH/pageable", 0, 0)), "memcpy.DtoH/pageable");
  EXPECT_EQ(limit_name(limit("train_step", Category::memcpy_bytes, "total", 0, 0)), "ranges.train_step.memcpy_bytes.total");
}

CiReport over_budget() {
  CiReport r;
  r.budget_file = "ci/gpu-budget.json";
  r.checked = true;
  r.check.checks = {limit("", Category::memcpy, "HtoD", 1, 1), limit("train_step", Category::sync, "total", 0, 20)};
  r.sites = {{"sync_unexpected", "train_step", "cudaStreamSynchronize <- step() <- main", 20},
             {"memcpy_dtoh", "train_step", "cudaMemcpy", 7},
             {"sync_unexpected", "readback", "cudaStreamSynchronize", 1}};
  r.exit = {kExitOverBudget, "over budget"};
  return r;
}

TEST(JUnit, OneTestcasePerLimitAndAFailureWithTheSitesOfItsRangeAndKind) {
  std::string const xml = junit_xml(over_budget());
  EXPECT_NE(xml.find("<testsuite name=\"pbm-guard.gpu-budget\" tests=\"2\" failures=\"1\" errors=\"0\" skipped=\"0\" time=\"0\">"),
            std::string::npos) << xml;
  EXPECT_NE(xml.find("<testcase name=\"memcpy.HtoD\" classname=\"pbm-guard.gpu-budget\" time=\"0\"/>"), std::string::npos);
  EXPECT_NE(xml.find("<testcase name=\"ranges.train_step.sync.total\" classname=\"pbm-guard.gpu-budget\" time=\"0\">\n"
                     "      <failure message=\"limit 0, seen 20\" type=\"over budget\">"),
            std::string::npos) << xml;
  EXPECT_NE(xml.find("  20 x sync_unexpected in range train_step\n      cudaStreamSynchronize\n      &lt;- step()\n"
                     "      &lt;- main\n"),
            std::string::npos) << xml;
  EXPECT_EQ(xml.find("cudaMemcpy\n"), std::string::npos);  // a memcpy site does not explain a sync limit
  EXPECT_EQ(xml.find("range readback"), std::string::npos);  // nor a site of another range
}

TEST(JUnit, NothingMeasuredIsOneErrorTestcase) {
  CiReport r;
  r.budget_file = "budget.json";
  r.exit = {kExitNoMeasurement, "run.json holds no process reports: nothing was measured"};
  std::string const xml = junit_xml(r);
  EXPECT_NE(xml.find("tests=\"1\" failures=\"0\" errors=\"1\""), std::string::npos) << xml;
  EXPECT_NE(xml.find("<testcase name=\"measurement\" classname=\"pbm-guard.budget\" time=\"0\">\n      <error "
                     "message=\"run.json holds no process reports: nothing was measured\" type=\"nothing measured\">"),
            std::string::npos) << xml;
}

TEST(JUnit, ProgramThatSkippedItselfIsASkippedTestcase) {
  CiReport r;
  r.budget_file = "budget.json";
  r.program_status = 77;
  r.exit = {77, "the program exited 77: skipped"};
  std::string const xml = junit_xml(r);
  EXPECT_NE(xml.find("tests=\"1\" failures=\"0\" errors=\"0\" skipped=\"1\""), std::string::npos) << xml;
  EXPECT_NE(xml.find("<skipped message=\"the program exited 77: skipped\"/>"), std::string::npos) << xml;
}

TEST(StepSummary, TableOfEveryLimitAndTheTopSites) {
  std::string const md = markdown_summary(over_budget());
  EXPECT_EQ(md.rfind("### pbm-guard: OVER BUDGET: 1 of 2 limits exceeded (`gpu-budget.json`)\n", 0), 0u) << md;
  EXPECT_NE(md.find("| limit | budget | seen | verdict |\n|---|---:|---:|---|\n"
                    "| `memcpy.HtoD` | 1 | 1 | ok |\n"
                    "| `ranges.train_step.sync.total` | 0 | 20 | over by 20 |\n"),
            std::string::npos) << md;
  EXPECT_NE(md.find("| 20 | sync_unexpected | train_step | `cudaStreamSynchronize <- step() <- main` |\n"),
            std::string::npos) << md;
  EXPECT_NE(md.find("**exit 3**: over budget"), std::string::npos);
}

TEST(StepSummary, CellsCannotBreakTheTable) {
  CiReport r = over_budget();
  r.sites = {{"memcpy_dtoh", "a|b", "f(`x`)\nnext\x1b", 1}};
  std::string const md = markdown_summary(r);
  EXPECT_NE(md.find("| 1 | memcpy_dtoh | a\\|b | `f('x') next` |\n"), std::string::npos) << md;
}

}  // namespace
}  // namespace pbm::guard

// pbm-guard: run an unmodified CUDA program (C++, Python, PyTorch) under pbm's telemetry and fail
// CI when it does more memcpys or host synchronisations than its budget allows.
//
//   pbm-guard run [--budget FILE [--junit FILE]] [--report FILE] [--mode count|warn|assert] [--prometheus ADDR] -- cmd...
//   pbm-guard baseline -o FILE [--slack N|P%] [--range NAME]... -- cmd...
//   pbm-guard check --budget FILE [--junit FILE] REPORT...
//   pbm-guard --version
//
// Exit codes: exit_codes.hpp and tools/README.md.
#include "budget.hpp"
#include "check.hpp"
#include "ci_report.hpp"
#include "exit_codes.hpp"
#include "launch.hpp"
#include "report.hpp"
#include "summary.hpp"

#include <pbm/telemetry/telemetry.hpp>

#include <CLI/CLI.hpp>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <set>
#include <sstream>
#include <sys/stat.h>

#ifndef PBM_GUARD_VERSION
#define PBM_GUARD_VERSION "unknown"
#endif

namespace {

using namespace pbm::guard;

struct RunOptions {
  std::vector<std::string> command;
  std::string mode;
  std::string prometheus;
  std::string report_file;
  std::string report_dir;  ///< keep the per-process reports here instead of a temporary directory
};

/// Where the CI reporters' files go; "" = not written.
struct CiOutputs {
  std::string junit;         ///< --junit FILE
  std::string step_summary;  ///< $GITHUB_STEP_SUMMARY (appended to)
};

struct RunResult {
  int program_status{0};
  RunFiles files;
  std::size_t not_attached{0};
  bool ran{false};
};

void say(std::string const& line) { std::fprintf(stderr, "pbm-guard: %s\n", line.c_str()); }

/// What to put in NVTX_INJECTION64_PATH: the user's value, else the libcupti telemetry would load.
std::string nvtx_injection_path(std::vector<std::string> const& base_env) {
  for (std::string const& e : base_env)
    if (e.rfind("NVTX_INJECTION64_PATH=", 0) == 0 && e.size() > 22) return e.substr(22);
  try {
    return pbm::telemetry::ensure_nvtx_injection();  // finds libcupti (dlopen, no CUDA call)
  } catch (...) {
    return {};
  }
}

bool write_text(std::string const& path, std::string const& text, std::string* error,
                std::ios::openmode mode = std::ios::trunc) {
  std::ofstream out(path, std::ios::binary | mode);
  out << text;
  out.close();
  if (!out) {
    *error = "cannot write " + path + ": " + std::strerror(errno);
    return false;
  }
  return true;
}

/// Runs the program under the injection and collects its reports. Returns an exit code to stop
/// with (usage/no-measurement problems found before running), or nullopt when the program ran.
std::optional<int> guarded_run(RunOptions const& o, RunResult* result) {
  std::string searched;
  std::string const inject = find_inject_library(self_exe(), &searched);
  if (inject.empty()) {
    say("cannot find libpbm_inject.so (looked at " + searched + "; " + kInjectLibEnv + "=PATH names it)");
    return kExitNoMeasurement;
  }
  std::vector<std::string> const base = current_environment();
  GuardSettings settings;
  settings.inject_library = inject;
  settings.nvtx_injection = nvtx_injection_path(base);
  bool temporary = o.report_dir.empty();
  std::string error;
  if (temporary) {
    settings.report_dir = make_temp_dir(&error);
    if (settings.report_dir.empty()) {
      say(error);
      return kExitUsage;
    }
  } else {
    for (std::size_t at = o.report_dir.find('/', 1);; at = o.report_dir.find('/', at + 1)) {  // mkdir -p
      ::mkdir(o.report_dir.substr(0, at).c_str(), 0755);
      if (at == std::string::npos) break;
    }
    RunFiles const old = collect_run_files(o.report_dir);
    if (!old.markers.empty() || !old.reports.empty()) {
      say("--report-dir " + o.report_dir + " already holds reports of another run; give an empty directory");
      return kExitUsage;
    }
    char buf[PATH_MAX];
    if (::realpath(o.report_dir.c_str(), buf) == nullptr) {
      say("--report-dir " + o.report_dir + ": " + std::strerror(errno));
      return kExitUsage;
    }
    settings.report_dir = buf;
  }
  if (!o.mode.empty()) settings.mode = o.mode;
  if (!o.prometheus.empty()) settings.prometheus = o.prometheus;
  std::vector<std::string> notes;
  std::vector<std::string> const env = child_environment(base, settings, &notes);
  for (std::string const& n : notes) say(n);

  result->program_status = spawn_and_wait(o.command, env, &error);
  result->ran = true;
  if (!error.empty()) say("cannot run " + error);
  result->files = collect_run_files(settings.report_dir);
  if (temporary) remove_dir(settings.report_dir);
  for (std::string const& p : result->files.problems) say("ignored: " + p);

  std::set<long> reported;
  for (ProcessReport const& r : result->files.reports) reported.insert(r.pid);
  for (LoadMarker const& m : result->files.markers) {
    if (!m.attached) {
      ++result->not_attached;
      say("pid " + std::to_string(m.pid) + " (" + m.argv0 + "): CUPTI detection not attached: " + m.reason);
    }
    if (reported.count(m.pid) == 0)
      say("pid " + std::to_string(m.pid) + " (" + m.argv0 +
          ") initialised CUDA but wrote no report (killed, crashed or left through _exit); its counts are missing");
  }
  if (!o.report_file.empty()) {
    if (!write_text(o.report_file, run_file_json(o.command, result->program_status, result->files), &error))
      say(error);
  }
  return std::nullopt;
}

/// Writes the JUnit file and appends the step summary. A file that cannot be written is said, and
/// does not change the exit code (the reporter then finds no file, which CI shows).
void write_ci_outputs(CiOutputs const& out, CiReport const& report) {
  std::string error;
  if (!out.junit.empty() && !write_text(out.junit, junit_xml(report), &error)) say(error);
  if (!out.step_summary.empty() && !write_text(out.step_summary, markdown_summary(report), &error, std::ios::app))
    say("GITHUB_STEP_SUMMARY: " + error);
}

std::vector<Site> all_sites(std::vector<ProcessReport> const& reports) {
  std::vector<Site> sites;
  for (ProcessReport const& r : reports) sites.insert(sites.end(), r.sites.begin(), r.sites.end());
  return sites;
}

int finish(ExitDecision const& d) {
  if (d.code != kExitOk) say("exit " + std::to_string(d.code) + ": " + d.reason);
  return d.code;
}

int cmd_run(RunOptions const& o, std::string const& budget_path, CiOutputs const& ci) {
  std::optional<Budget> budget;
  if (!budget_path.empty()) {
    try {
      budget = load_budget(budget_path);
    } catch (BudgetError const& e) {
      say(e.what());
      return kExitUsage;
    }
  }
  RunResult r;
  if (auto stop = guarded_run(o, &r)) return *stop;
  if (!r.files.reports.empty()) std::cerr << "\n" << format_summary(r.files.reports);
  RunOutcome outcome{r.program_status, r.files.markers.size(), r.not_attached, r.files.reports.size(), false};
  CiReport report;
  if (budget && !r.files.reports.empty()) {
    report.check = check(*budget, merge(r.files.reports));
    report.checked = true;
    std::cerr << "\n" << format_check(report.check);
    outcome.over_budget = !report.check.within();
  }
  std::cerr.flush();
  ExitDecision const d = decide_exit(outcome);
  if (budget) {
    report.budget_file = budget_path;
    report.sites = all_sites(r.files.reports);
    report.program_status = r.program_status;
    report.exit = d;
    write_ci_outputs(ci, report);
  }
  return finish(d);
}

int cmd_baseline(RunOptions const& o, std::string const& out_path, std::string const& slack_text,
                 std::string const& events_text, std::vector<std::string> const& zero_ranges,
                 std::string const& description) {
  Slack slack;
  try {
    if (!slack_text.empty()) slack = parse_slack(slack_text);
  } catch (std::invalid_argument const& e) {
    say(e.what());
    return kExitUsage;
  }
  RunResult r;
  if (auto stop = guarded_run(o, &r)) return *stop;
  if (!r.files.reports.empty()) std::cerr << "\n" << format_summary(r.files.reports);
  RunOutcome const outcome{r.program_status, r.files.markers.size(), r.not_attached, r.files.reports.size(), false};
  ExitDecision const d = decide_exit(outcome);
  if (d.code != kExitOk) {
    say("no budget written");
    return finish(d);
  }
  std::string desc = description;
  if (desc.empty()) {
    desc = "baseline of:";
    for (std::string const& a : o.command) desc += " " + a;
  }
  Budget const b = baseline_budget(merge(r.files.reports), events_text == "unexpected" ? Events::unexpected : Events::all,
                                   slack, desc, zero_ranges);
  std::string error;
  if (!write_text(out_path, budget_json(b), &error)) {
    say(error);
    return kExitUsage;
  }
  say("budget written to " + out_path);
  return kExitOk;
}

int cmd_check(std::string const& budget_path, std::vector<std::string> const& report_paths, CiOutputs const& ci) {
  Budget budget;
  std::vector<ProcessReport> reports;
  try {
    budget = load_budget(budget_path);
    for (std::string const& p : report_paths) {
      std::vector<ProcessReport> more = load_reports(p);
      reports.insert(reports.end(), more.begin(), more.end());
    }
  } catch (std::exception const& e) {  // BudgetError, ReportError
    say(e.what());
    return kExitUsage;
  }
  CiReport report;
  report.budget_file = budget_path;
  if (reports.empty()) {
    // e.g. the run file of a program that never initialised CUDA: there is nothing to compare, and
    // "within budget" would be a claim about nothing.
    std::string files;
    for (std::string const& p : report_paths) files += (files.empty() ? "" : ", ") + p;
    report.exit = {kExitNoMeasurement,
                   files + (report_paths.size() == 1 ? " holds" : " hold") + " no process reports: nothing was measured"};
    write_ci_outputs(ci, report);
    return finish(report.exit);
  }
  std::cout << format_summary(reports);
  report.check = check(budget, merge(reports));
  report.checked = true;
  std::cout << "\n" << format_check(report.check);
  std::cout.flush();
  std::size_t not_attached = 0;
  for (ProcessReport const& r : reports) not_attached += r.telemetry_attached ? 0 : 1;
  for (ProcessReport const& r : reports)
    if (!r.telemetry_attached)
      say(r.source + ": pid " + std::to_string(r.pid) + " ran without CUPTI detection: " + r.telemetry_reason);
  report.sites = all_sites(reports);
  report.exit = decide_exit({0, reports.size(), not_attached, reports.size(), !report.check.within()});
  write_ci_outputs(ci, report);
  return finish(report.exit);
}

/// The program to run: the words from the first non-option word on (CLI11's prefix command), and
/// everything after the first "--", which main() takes out before CLI11 sees it.
std::vector<std::string> command_of(CLI::App const* sub, std::optional<std::vector<std::string>> const& after_dashes) {
  std::vector<std::string> cmd = sub->remaining();
  if (after_dashes) {
    if (!cmd.empty()) cmd.push_back("--");  // "run prog -- x": the -- belongs to prog
    cmd.insert(cmd.end(), after_dashes->begin(), after_dashes->end());
  }
  return cmd;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    CLI::App app{"pbm-guard: run a CUDA program under pbm telemetry and hold its memcpys and syncs to a budget.\n"
                 "Exit codes: 0 within budget, 2 usage or malformed budget, 3 over budget, 4 nothing measured\n"
                 "(CUDA never initialised, injection not loaded, CUPTI not attached, no process reports),\n"
                 "else the program's own status (77 from the program: skipped)."};
    app.require_subcommand(1);
    app.set_version_flag("--version", std::string("pbm-guard ") + PBM_GUARD_VERSION);
    app.footer("Environment:\n"
               "  PBM_GUARD_INJECT_LIB: use this libpbm_inject.so (the library pbm-guard puts in the program's\n"
               "    CUDA_INJECTION64_PATH) instead of the one beside pbm-guard or in ../lib\n"
               "  GITHUB_STEP_SUMMARY: run --budget and check append a Markdown summary to this file");
    // CLI11 prints its errors bare; every line pbm-guard writes about a problem starts "pbm-guard: ".
    app.failure_message([](CLI::App const*, CLI::Error const& e) {
      std::string out;
      std::istringstream lines(e.what());
      for (std::string line; std::getline(lines, line);) out += "pbm-guard: " + line + "\n";
      return out + "pbm-guard: run with --help (after the subcommand for its options) for more information\n";
    });

    RunOptions run_opts;
    std::string budget_path;
    CLI::App* run = app.add_subcommand("run", "run a program, print what it copied and synchronised, check a budget");
    CiOutputs ci;
    if (char const* summary = std::getenv("GITHUB_STEP_SUMMARY")) ci.step_summary = summary;
    CLI::Option* run_budget =
        run->add_option("--budget", budget_path, "budget file (JSON, schema pbm.budget/1)")->check(CLI::ExistingFile);
    run->add_option("--junit", ci.junit, "write JUnit XML to FILE: a testcase per budget limit")->needs(run_budget);
    run->add_option("--report", run_opts.report_file, "write the merged run (all process reports) to FILE");
    run->add_option("--report-dir", run_opts.report_dir, "keep the per-process reports in DIR (default: a temporary directory)");
    run->add_option("--mode", run_opts.mode, "telemetry mode in the program (default count)")
        ->check(CLI::IsMember({"count", "warn", "assert"}));
    run->add_option("--prometheus", run_opts.prometheus, "serve Prometheus metrics from the program at ADDR (host:port)");
    run->prefix_command();  // everything from the first non-option word on is the program
    run->footer("Everything after -- (or from the first word that is not an option) is the program and its arguments.");

    RunOptions base_opts;
    std::string out_path, slack, events = "all", description;
    std::vector<std::string> zero_ranges;
    CLI::App* baseline = app.add_subcommand("baseline", "run a program and write a budget it meets");
    baseline->add_option("-o,--output", out_path, "budget file to write")->required();
    baseline->add_option("--slack", slack, "headroom on non-zero limits: N more, or P% more (zero limits stay zero)");
    baseline->add_option("--events", events, "count all copies/syncs (default) or only unexpected ones")
        ->check(CLI::IsMember({"all", "unexpected"}));
    baseline->add_option("--range", zero_ranges, "NVTX range to budget at zero even if the run saw nothing in it (repeatable)");
    baseline->add_option("--description", description, "description stored in the budget");
    baseline->add_option("--report", base_opts.report_file, "write the merged run (all process reports) to FILE");
    baseline->add_option("--report-dir", base_opts.report_dir, "keep the per-process reports in DIR");
    baseline->add_option("--mode", base_opts.mode, "telemetry mode in the program (default count)")
        ->check(CLI::IsMember({"count", "warn", "assert"}));
    baseline->prefix_command();
    baseline->footer("Everything after -- (or from the first word that is not an option) is the program and its arguments.");

    std::string check_budget;
    std::vector<std::string> reports;
    CLI::App* check_cmd = app.add_subcommand("check", "compare existing reports (pbm.report/1 or pbm-guard run --report) with a budget");
    check_cmd->add_option("--budget", check_budget, "budget file")->required()->check(CLI::ExistingFile);
    check_cmd->add_option("--junit", ci.junit, "write JUnit XML to FILE: a testcase per budget limit");
    check_cmd->add_option("reports", reports, "report files")->required()->check(CLI::ExistingFile);

    // CLI11 2.1 rejects words after "--" in a prefix-command subcommand: split them off here.
    std::optional<std::vector<std::string>> after_dashes;
    int cli_argc = argc;
    for (int i = 1; i < argc; ++i) {
      if (std::strcmp(argv[i], "--") == 0) {
        after_dashes = std::vector<std::string>(argv + i + 1, argv + argc);
        cli_argc = i;
        break;
      }
    }
    try {
      app.parse(cli_argc, argv);
    } catch (CLI::ParseError const& e) {
      int const rc = app.exit(e);
      return rc == 0 ? 0 : kExitUsage;
    }

    if (run->parsed()) {
      run_opts.command = command_of(run, after_dashes);
      if (run_opts.command.empty()) {
        say("run: no command given (pbm-guard run [options] -- program args...)");
        return kExitUsage;
      }
      return cmd_run(run_opts, budget_path, ci);
    }
    if (baseline->parsed()) {
      base_opts.command = command_of(baseline, after_dashes);
      if (base_opts.command.empty()) {
        say("baseline: no command given (pbm-guard baseline -o FILE [options] -- program args...)");
        return kExitUsage;
      }
      return cmd_baseline(base_opts, out_path, slack, events, zero_ranges, description);
    }
    if (after_dashes) {
      say("check: unexpected \"--\" (check takes report files, not a program)");
      return kExitUsage;
    }
    return cmd_check(check_budget, reports, ci);
  } catch (std::exception const& e) {
    say(std::string("internal error: ") + e.what());
    return 1;
  }
}

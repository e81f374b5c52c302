// report_svg: the chart of a simulation report, as plain SVG. Top: the
// autoscaled strategy's demand (tasks) against its capacity (slots, stacked
// by market) over time. Bottom: what each strategy has cost so far.
#include <algorithm>
#include <cstdio>
#include <string>

#include "sim/simulator.h"

namespace kiln::sim {
namespace {

constexpr double kWidth = 960, kLeft = 70, kRight = 20, kPanel = 230, kGap = 70, kTop = 40;

std::string fmt(const char* f, double a) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, a);
  return buf;
}

// A "nice" axis maximum: 1, 2 or 5 times a power of ten, at least v.
double nice_max(double v) {
  if (v <= 0) return 1;
  double p = 1;
  while (p * 10 <= v) p *= 10;
  while (p > v) p /= 10;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * p >= v) return m * p;
  return 10 * p;
}

struct Axes {
  double x0, y0, w, h, tmax, vmax;
  double x(double t) const { return x0 + w * t / tmax; }
  double y(double v) const { return y0 + h - h * v / vmax; }
};

std::string axes_svg(const Axes& a, const std::string& title, const std::string& unit) {
  std::string s;
  s += "<text x=\"" + fmt("%.0f", a.x0) + "\" y=\"" + fmt("%.0f", a.y0 - 12) +
       "\" font-size=\"15\" font-weight=\"bold\">" + title + "</text>\n";
  for (int i = 0; i <= 4; ++i) {
    const double v = a.vmax * i / 4;
    const double y = a.y(v);
    s += "<line x1=\"" + fmt("%.1f", a.x0) + "\" x2=\"" + fmt("%.1f", a.x0 + a.w) + "\" y1=\"" +
         fmt("%.1f", y) + "\" y2=\"" + fmt("%.1f", y) + "\" stroke=\"#ddd\"/>\n";
    s += "<text x=\"" + fmt("%.1f", a.x0 - 6) + "\" y=\"" + fmt("%.1f", y + 4) +
         "\" font-size=\"11\" text-anchor=\"end\">" + fmt(v >= 100 ? "%.0f" : "%.1f", v) +
         "</text>\n";
  }
  s += "<text x=\"14\" y=\"" + fmt("%.1f", a.y0 + a.h / 2) +
       "\" font-size=\"12\" transform=\"rotate(-90 14 " + fmt("%.1f", a.y0 + a.h / 2) +
       ")\" text-anchor=\"middle\">" + unit + "</text>\n";
  const double days = a.tmax / 24;
  const int step = days > 20 ? 5 : days > 6 ? 2 : 1;
  for (int d = 0; d <= static_cast<int>(days); d += step) {
    const double x = a.x(d * 24.0);
    s += "<line x1=\"" + fmt("%.1f", x) + "\" x2=\"" + fmt("%.1f", x) + "\" y1=\"" +
         fmt("%.1f", a.y0 + a.h) + "\" y2=\"" + fmt("%.1f", a.y0 + a.h + 5) +
         "\" stroke=\"#333\"/>\n";
    s += "<text x=\"" + fmt("%.1f", x) + "\" y=\"" + fmt("%.1f", a.y0 + a.h + 18) +
         "\" font-size=\"11\" text-anchor=\"middle\">day " + std::to_string(d) + "</text>\n";
  }
  s += "<rect x=\"" + fmt("%.1f", a.x0) + "\" y=\"" + fmt("%.1f", a.y0) + "\" width=\"" +
       fmt("%.1f", a.w) + "\" height=\"" + fmt("%.1f", a.h) +
       "\" fill=\"none\" stroke=\"#333\"/>\n";
  return s;
}

std::string polyline(const Axes& a, const std::vector<std::pair<double, double>>& pts,
                     const std::string& color, const std::string& id, double width = 1.5) {
  std::string s = "<polyline id=\"" + id + "\" fill=\"none\" stroke=\"" + color +
                  "\" stroke-width=\"" + fmt("%.1f", width) + "\" points=\"";
  for (const auto& [t, v] : pts) s += fmt("%.1f", a.x(t)) + "," + fmt("%.1f", a.y(v)) + " ";
  return s + "\"/>\n";
}

std::string area(const Axes& a, const std::vector<std::pair<double, double>>& lower,
                 const std::vector<std::pair<double, double>>& upper, const std::string& color,
                 const std::string& id) {
  std::string s = "<polygon id=\"" + id + "\" fill=\"" + color + "\" stroke=\"none\" points=\"";
  for (const auto& [t, v] : upper) s += fmt("%.1f", a.x(t)) + "," + fmt("%.1f", a.y(v)) + " ";
  for (auto it = lower.rbegin(); it != lower.rend(); ++it) {
    s += fmt("%.1f", a.x(it->first)) + "," + fmt("%.1f", a.y(it->second)) + " ";
  }
  return s + "\"/>\n";
}

std::string legend(double x, double y,
                   const std::vector<std::pair<std::string, std::string>>& items) {
  std::string s;
  for (const auto& [color, label] : items) {
    s += "<rect x=\"" + fmt("%.1f", x) + "\" y=\"" + fmt("%.1f", y - 9) +
         "\" width=\"12\" height=\"10\" fill=\"" + color + "\"/>\n";
    s += "<text x=\"" + fmt("%.1f", x + 16) + "\" y=\"" + fmt("%.1f", y) + "\" font-size=\"11\">" +
         label + "</text>\n";
    x += 24 + 6.5 * static_cast<double>(label.size());
  }
  return s;
}

}  // namespace

std::string report_svg(const Report& r) {
  const double height = kTop + 2 * kPanel + kGap + 60;
  std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + fmt("%.0f", kWidth) +
                  "\" height=\"" + fmt("%.0f", height) +
                  "\" font-family=\"sans-serif\">\n<rect width=\"100%\" height=\"100%\" "
                  "fill=\"white\"/>\n";
  double tmax = 1;
  for (const auto& st : r.strategies)
    for (const auto& p : st.series) tmax = std::max(tmax, p.t_h);
  const StrategyResult* autoscaled = nullptr;
  for (const auto& st : r.strategies)
    if (st.name == "autoscaled") autoscaled = &st;

  // Panel 1: demand and capacity of the autoscaled cluster.
  if (autoscaled) {
    double vmax = 1;
    std::vector<std::pair<double, double>> zero, od, total, demand;
    for (const Point& p : autoscaled->series) {
      vmax = std::max({vmax, p.demand, p.on_demand_slots + p.spot_slots});
      zero.emplace_back(p.t_h, 0);
      od.emplace_back(p.t_h, p.on_demand_slots);
      total.emplace_back(p.t_h, p.on_demand_slots + p.spot_slots);
      demand.emplace_back(p.t_h, p.demand);
    }
    Axes a{kLeft, kTop, kWidth - kLeft - kRight, kPanel, tmax, nice_max(vmax)};
    s += axes_svg(a, "Autoscaled: demand and capacity (hourly samples)", "tasks / slots");
    s += area(a, zero, od, "#6a9fd8", "capacity-on-demand");
    s += area(a, od, total, "#f2b441", "capacity-spot");
    s += polyline(a, demand, "#c0392b", "demand");
    s += legend(kLeft, kTop + kPanel + 36,
                {{"#6a9fd8", "on-demand slots"},
                 {"#f2b441", "spot slots"},
                 {"#c0392b", "demand: running + pending tasks"}});
  }

  // Panel 2: cumulative cost of each strategy.
  const char* colors[] = {"#7f8c8d", "#8e44ad", "#16a085", "#e67e22"};
  double cmax = 1;
  for (const auto& st : r.strategies)
    for (const auto& p : st.series) cmax = std::max(cmax, p.cost);
  Axes b{kLeft, kTop + kPanel + kGap, kWidth - kLeft - kRight, kPanel, tmax, nice_max(cmax)};
  s += axes_svg(b, "Cost so far, by strategy", "cost");
  std::vector<std::pair<std::string, std::string>> items;
  for (size_t i = 0; i < r.strategies.size(); ++i) {
    const auto& st = r.strategies[i];
    std::vector<std::pair<double, double>> pts;
    for (const Point& p : st.series) pts.emplace_back(p.t_h, p.cost);
    const std::string color = colors[i % 4];
    s += polyline(b, pts, color, "cost-" + st.name, 2);
    items.emplace_back(color, st.name + " " + fmt("%.0f", st.cost));
  }
  s += legend(kLeft, kTop + 2 * kPanel + kGap + 36, items);
  return s + "</svg>\n";
}

}  // namespace kiln::sim

#include "hexbin.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

namespace qs {

int HexBins::maxCount() const { return counts.empty() ? 0 : *std::max_element(counts.begin(), counts.end()); }

void HexBins::corner(int i, double& dx, double& dy) const {
    // pointy-top: top, upper right, lower right, bottom, lower left, upper left
    static const double fx[6] = {0, 0.5, 0.5, 0, -0.5, -0.5};
    static const double fy[6] = {1.0 / 3, 1.0 / 6, -1.0 / 6, -1.0 / 3, -1.0 / 6, 1.0 / 6};
    dx = fx[i % 6] * cellWidth;
    dy = fy[i % 6] * cellHeight;
}

std::size_t HexBins::total() const {
    return static_cast<std::size_t>(std::accumulate(counts.begin(), counts.end(), 0LL));
}

HexBins hexbin(const std::vector<double>& x, const std::vector<double>& y, int gridX, double xMin,
               double xMax, double yMin, double yMax, double aspect) {
    HexBins bins;
    gridX = std::max(1, gridX);
    if (!(xMax > xMin))
        xMax = xMin + 1;
    if (!(yMax > yMin))
        yMax = yMin + 1;
    bins.xMin = xMin;
    bins.xMax = xMax;
    bins.yMin = yMin;
    bins.yMax = yMax;
    bins.gridX = gridX;
    // Regular hexagons on screen need the rows of one lattice sqrt(3) cell widths apart in
    // screen units; in data units that is sx * sqrt(3) * (y range / x range) / aspect.
    const double sx = (xMax - xMin) / gridX;
    const double syData = sx * std::sqrt(3.0) * ((yMax - yMin) / (xMax - xMin)) / (aspect > 0 ? aspect : 1.0);
    bins.cellWidth = sx;
    bins.cellHeight = syData;
    // lattice 1 centres: (xMin + i*sx, yMin + j*sy); lattice 2: offset by (sx/2, sy/2)
    std::map<std::pair<long long, long long>, int> lattice1, lattice2;
    for (std::size_t k = 0; k < x.size() && k < y.size(); ++k) {
        if (!std::isfinite(x[k]) || !std::isfinite(y[k]))
            continue;
        const double ix = (x[k] - xMin) / sx;
        const double iy = (y[k] - yMin) / syData;
        const double ix1 = std::round(ix), iy1 = std::round(iy);
        const double ix2 = std::floor(ix), iy2 = std::floor(iy);
        // squared distances with y scaled so that both lattices are regular
        const double d1 = (ix - ix1) * (ix - ix1) + 3.0 * (iy - iy1) * (iy - iy1);
        const double d2 = (ix - ix2 - 0.5) * (ix - ix2 - 0.5) + 3.0 * (iy - iy2 - 0.5) * (iy - iy2 - 0.5);
        if (d1 <= d2)
            ++lattice1[{static_cast<long long>(ix1), static_cast<long long>(iy1)}];
        else
            ++lattice2[{static_cast<long long>(ix2), static_cast<long long>(iy2)}];
    }
    for (const auto& [cell, count] : lattice1) {
        bins.centerX.push_back(xMin + static_cast<double>(cell.first) * sx);
        bins.centerY.push_back(yMin + static_cast<double>(cell.second) * syData);
        bins.counts.push_back(count);
    }
    for (const auto& [cell, count] : lattice2) {
        bins.centerX.push_back(xMin + (static_cast<double>(cell.first) + 0.5) * sx);
        bins.centerY.push_back(yMin + (static_cast<double>(cell.second) + 0.5) * syData);
        bins.counts.push_back(count);
    }
    return bins;
}

HexBins hexbin(const std::vector<double>& x, const std::vector<double>& y, int gridX) {
    double xMin = 0, xMax = 1, yMin = 0, yMax = 1;
    bool first = true;
    for (std::size_t k = 0; k < x.size() && k < y.size(); ++k) {
        if (!std::isfinite(x[k]) || !std::isfinite(y[k]))
            continue;
        if (first) {
            xMin = xMax = x[k];
            yMin = yMax = y[k];
            first = false;
        }
        xMin = std::min(xMin, x[k]);
        xMax = std::max(xMax, x[k]);
        yMin = std::min(yMin, y[k]);
        yMax = std::max(yMax, y[k]);
    }
    return hexbin(x, y, gridX, xMin, xMax, yMin, yMax);
}

} // namespace qs

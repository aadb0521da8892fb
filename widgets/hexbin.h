#pragma once
// Hexagonal binning of (x, y) samples, with no Qt: the binning is what the tests check.
// Pointy-top hexagons on two interleaved rectangular lattices; a point goes to the
// nearest centre (distances in units where hexagons are regular).

#include <cstddef>
#include <vector>

namespace qs {

struct HexBins {
    double xMin = 0, xMax = 1, yMin = 0, yMax = 1;
    int gridX = 0;                 // hexagons across the x range
    double cellWidth = 0;          // x distance between neighbouring centres in a row
    double cellHeight = 0;         // y distance between rows of one lattice
    std::vector<double> centerX, centerY;
    std::vector<int> counts;       // one per centre, in the same order
    // Corner i (0..5) of the hexagon around a centre, as an offset in data units.
    void corner(int i, double& dx, double& dy) const;
    int maxCount() const;
    std::size_t total() const;
};

// gridX hexagons across [xMin, xMax]; the y spacing follows so that hexagons are regular
// in data units scaled by (xMax - xMin) / (yMax - yMin) * aspect (aspect = plot height /
// plot width, 1 for square plots). Empty bins are dropped. Non-finite samples are skipped.
HexBins hexbin(const std::vector<double>& x, const std::vector<double>& y, int gridX,
               double xMin, double xMax, double yMin, double yMax, double aspect = 1.0);

// The same with the bounds taken from the data.
HexBins hexbin(const std::vector<double>& x, const std::vector<double>& y, int gridX);

} // namespace qs

// QSMReport: building blocks for benchmark reports. No science beyond statistics lives here.
//
//   Figures     PNGImage (+Drawing), RGBColor, ColorMap, BitmapFont, SliceMontage,
//               SliceOrientation, PixelRectangle, SVGPlot, AxisTicks
//   Statistics  Statistics, ConfidenceInterval, StudentT, WilcoxonSignedRank
//   Tables      MarkdownTable, NumberFormat, RankedSummary
@_exported import QSMCore

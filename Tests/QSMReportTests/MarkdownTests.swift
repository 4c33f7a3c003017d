import QSMReport
import Testing

@Suite struct MarkdownTableTests {
    @Test func rendersPaddedAlignedAndEscapedCells() throws {
        var table = try MarkdownTable(header: ["Method", "NRMSE", "Note"], alignments: [.left, .right, .center])
        try table.append(["tkd", "45.2", "a|b"])
        try table.append(["rts", "38.1", ""])
        #expect(table.render() == """
        | Method | NRMSE | Note |
        | :----- | ----: | :--: |
        | tkd    |  45.2 | a\\|b |
        | rts    |  38.1 |      |

        """)
    }

    @Test func lineBreaksBecomeBreakTags() {
        #expect(MarkdownTable.escape("two\nlines | pipe") == "two<br>lines \\| pipe")
    }

    @Test func wrongCellCountsThrow() throws {
        var table = try MarkdownTable(header: ["a", "b"])
        #expect(throws: QSMError.mismatch("Markdown table", "row 1 has 1 cells for 2 columns")) { try table.append(["x"]) }
        #expect(throws: QSMError.mismatch("Markdown table", "1 alignments for 2 columns")) {
            try MarkdownTable(header: ["a", "b"], alignments: [.left])
        }
    }
}

@Suite struct NumberFormatTests {
    @Test(arguments: [
        (0.0123456, 3, "0.0123"), (0.012, 3, "0.0120"), (1234.5, 3, "1230"), (9.996, 3, "10.0"),
        (-0.15, 2, "-0.15"), (1.5e-5, 3, "1.50e-5"), (2.5e7, 2, "2.5e7"), (0, 3, "0.00"),
        (-0.0001, 1, "-0.0001"), (-0.00004, 2, "-4.0e-5"), (Double.nan, 3, "NaN"), (-Double.infinity, 3, "-inf"),
        (-0.0004, 1, "-0.0004"), (999_999.7, 3, "1.00e6"),
    ])
    func significantDigits(_ value: Double, _ digits: Int, _ expected: String) {
        #expect(NumberFormat.significant(value, digits: digits) == expected)
    }

    @Test(arguments: [
        (0.91234, 0.0123, "0.912 ± 0.012"), (45.237, 1.26, "45.2 ± 1.3"), (1234.5, 56.7, "1235 ± 57"),
        (3.0, Double.nan, "3.00"), (2.0, 0.0, "2.00 ± 0"), (-0.02049, 0.00351, "-0.0205 ± 0.0035"),
    ])
    func meanWithHalfWidth(_ mean: Double, _ halfWidth: Double, _ expected: String) {
        #expect(NumberFormat.meanWithHalfWidth(mean, halfWidth) == expected)
    }
}

@Suite struct RankedSummaryTests {
    /// Expected cells worked out by hand: rts mean 41, s 1, half-width t(0.975, 2)·1/√3 = 2.48 → "2.5";
    /// tv ties rts on the mean (shared rank 1), s 0.5, half-width 1.24; its differences to rts
    /// (0.5, 0, −0.5) leave two tied ranks, so p = 1; tkd is above rts on all three seeds, p = 2/2³.
    @Test func ranksByMeanWithSharedRanksAndPairedPValues() throws {
        let summary = RankedSummary(metric: "NRMSE (%)", order: .lowerIsBetter, entries: [
            .init(method: "tkd", values: [50, 52, 54]),
            .init(method: "rts", values: [40, 41, 42]),
            .init(method: "tv", values: [40.5, 41, 41.5]),
        ])
        #expect(try summary.render() == """
        | Rank | Method | NRMSE (%) (mean ± 95 % CI) |   SD |   n | p vs. #1 |
        | ---: | :----- | -------------------------: | ---: | --: | -------: |
        |    1 | rts    |                 41.0 ± 2.5 |  1.0 |   3 |        – |
        |    1 | tv     |                 41.0 ± 1.2 | 0.50 |   3 |      1.0 |
        |    3 | tkd    |                 52.0 ± 5.0 |  2.0 |   3 |     0.25 |

        """)
    }

    @Test func higherIsBetterAndDivergedRunsRankLast() throws {
        let summary = RankedSummary(metric: "SSIM", order: .higherIsBetter, entries: [
            .init(method: "diverged", values: [0.5, .nan]),
            .init(method: "low", values: [0.80, 0.82]),
            .init(method: "high", values: [0.90, 0.93]),
        ])
        #expect(try summary.ranked().map(\.entry.method) == ["high", "low", "diverged"])
        #expect(try summary.ranked().map(\.rank) == [1, 2, 3])
    }

    @Test func emptyMethodsAreNamedInTheError() {
        let summary = RankedSummary(metric: "HFEN", order: .lowerIsBetter, entries: [.init(method: "tkd", values: [])])
        #expect(throws: QSMError.invalidParameter("HFEN of tkd", "the list is empty; a mean needs at least one value")) {
            try summary.render()
        }
    }
}

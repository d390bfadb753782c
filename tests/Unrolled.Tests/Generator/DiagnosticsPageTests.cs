using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using Microsoft.CodeAnalysis;
using Xunit;

namespace Unrolled.Tests.Generator;

/// <summary>
/// Every diagnostic's help link points at a section of docs/diagnostics.md that exists, and every section of
/// that page belongs to a diagnostic.
/// </summary>
public class DiagnosticsPageTests
{
    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "docs", "diagnostics.md")) && Directory.Exists(Path.Combine(dir.FullName, "generator")))
                return dir.FullName;
        throw new DirectoryNotFoundException("No docs/diagnostics.md above " + AppContext.BaseDirectory);
    }

    /// <summary>The anchors GitHub gives the page's headings: lower case, punctuation dropped, spaces to hyphens.</summary>
    private static List<string> Anchors(string markdown)
    {
        var anchors = new List<string>();
        bool fenced = false;
        foreach (string raw in markdown.Split('\n'))
        {
            string line = raw.TrimEnd('\r');
            if (line.StartsWith("```", StringComparison.Ordinal)) fenced = !fenced;
            if (fenced || !line.StartsWith("#", StringComparison.Ordinal)) continue;
            string text = line.TrimStart('#').Trim().ToLowerInvariant();
            var slug = new StringBuilder();
            foreach (char c in text)
                if (char.IsLetterOrDigit(c) || c is '-' or '_') slug.Append(c);
                else if (c == ' ') slug.Append('-');
            anchors.Add(slug.ToString());
        }
        return anchors;
    }

    private static IReadOnlyList<DiagnosticDescriptor> Descriptors
        => Unrolled.Generator.Diagnostics.Descriptors.OrderBy(d => d.Id, StringComparer.Ordinal).ToList();

    [Fact]
    public void Every_diagnostic_links_to_its_section_of_the_diagnostics_page()
    {
        List<string> anchors = Anchors(File.ReadAllText(Path.Combine(RepositoryRoot(), "docs", "diagnostics.md")));
        Assert.Equal(19, Descriptors.Count);
        foreach (DiagnosticDescriptor d in Descriptors)
        {
            string prefix = Unrolled.Generator.Diagnostics.HelpBase + "#";
            Assert.StartsWith("https://github.com/", d.HelpLinkUri);
            Assert.True(d.HelpLinkUri.StartsWith(prefix, StringComparison.Ordinal), $"{d.Id}: {d.HelpLinkUri}");
            string anchor = d.HelpLinkUri.Substring(prefix.Length);
            Assert.Equal(d.Id.ToLowerInvariant(), anchor);
            Assert.True(anchors.Contains(anchor), $"{d.Id}: docs/diagnostics.md has no heading with the anchor #{anchor}");
        }
    }

    [Fact]
    public void Every_section_of_the_diagnostics_page_is_a_diagnostic()
    {
        List<string> sections = Anchors(File.ReadAllText(Path.Combine(RepositoryRoot(), "docs", "diagnostics.md")))
            .Where(a => System.Text.RegularExpressions.Regex.IsMatch(a, "^unr[0-9]{4}$")).ToList();
        Assert.Equal(Descriptors.Select(d => d.Id.ToLowerInvariant()), sections);
    }

    [Fact]
    public void The_help_link_reaches_the_reported_diagnostic()
    {
        GeneratorOutput run = GeneratorHarness.Run(DiagnosticTests.Declare("[Network(1, 4, 4)] [Conv2D(2, 5)]"));
        Diagnostic d = Assert.Single(run.ProjectDiagnostics);
        Assert.Equal("https://github.com/unrolled-net/unrolled/blob/main/docs/diagnostics.md#unr0005", d.Descriptor.HelpLinkUri);
    }
}

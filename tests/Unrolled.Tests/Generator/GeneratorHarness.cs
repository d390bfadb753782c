using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.IO;
using System.Linq;
using System.Text;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Text;
using Unrolled.Generator;

namespace Unrolled.Tests.Generator;

/// <summary>
/// A test source with marked spans. <c>{|</c> and <c>|}</c> around a piece of text are removed from the
/// source, and the span the text occupies afterwards is recorded, so that a test can say exactly where a
/// diagnostic belongs: <c>[{|Conv2D(3, 7)|}]</c> marks the attribute, <c>partial class {|Net|}</c> the
/// class identifier.
/// </summary>
public sealed class MarkedSource
{
    public const string OpenMarker = "{|";
    public const string CloseMarker = "|}";

    private MarkedSource(string path, string text, ImmutableArray<TextSpan> spans)
    {
        Path = path;
        Text = text;
        Spans = spans;
    }

    /// <summary>The file path the source is compiled under.</summary>
    public string Path { get; }

    /// <summary>The source with the markers removed.</summary>
    public string Text { get; }

    /// <summary>The marked spans, in the order they appear.</summary>
    public ImmutableArray<TextSpan> Spans { get; }

    public static MarkedSource Parse(string markup, string path)
    {
        var text = new StringBuilder(markup.Length);
        var spans = ImmutableArray.CreateBuilder<TextSpan>();
        int? openedAt = null;
        int i = 0;
        while (i < markup.Length)
        {
            if (string.CompareOrdinal(markup, i, OpenMarker, 0, OpenMarker.Length) == 0)
            {
                if (openedAt is not null) throw new ArgumentException($"Nested '{OpenMarker}' markers in {path}.");
                openedAt = text.Length;
                i += OpenMarker.Length;
            }
            else if (string.CompareOrdinal(markup, i, CloseMarker, 0, CloseMarker.Length) == 0)
            {
                if (openedAt is null) throw new ArgumentException($"'{CloseMarker}' without '{OpenMarker}' in {path}.");
                spans.Add(TextSpan.FromBounds(openedAt.Value, text.Length));
                openedAt = null;
                i += CloseMarker.Length;
            }
            else
            {
                text.Append(markup[i]);
                i++;
            }
        }
        if (openedAt is not null) throw new ArgumentException($"Unclosed '{OpenMarker}' marker in {path}.");
        return new MarkedSource(path, text.ToString(), spans.ToImmutable());
    }

    /// <summary>The text of a marked span, for readable assertion messages.</summary>
    public string TextOf(TextSpan span) => Text.Substring(span.Start, span.Length);
}

/// <summary>Everything one in-memory run of the generator and the analyzer produced.</summary>
public sealed class GeneratorOutput
{
    public GeneratorOutput(
        IReadOnlyList<MarkedSource> sources,
        ImmutableArray<Diagnostic> generatorDiagnostics,
        ImmutableArray<Diagnostic> analyzerDiagnostics,
        IReadOnlyList<(string HintName, string Text)> generatedSources,
        ImmutableArray<Diagnostic> compilationDiagnostics,
        ImmutableHashSet<SyntaxTree> generatedTrees)
    {
        Sources = sources;
        GeneratorDiagnostics = generatorDiagnostics;
        AnalyzerDiagnostics = analyzerDiagnostics;
        GeneratedSources = generatedSources;
        CompilationDiagnostics = compilationDiagnostics;
        GeneratedTrees = generatedTrees;
    }

    /// <summary>The test sources, markers removed; the first is the one most tests mark.</summary>
    public IReadOnlyList<MarkedSource> Sources { get; }

    /// <summary>What the generator reported (UNR diagnostics, or CS8785 if it threw).</summary>
    public ImmutableArray<Diagnostic> GeneratorDiagnostics { get; }

    /// <summary>What <see cref="LayerWithoutNetworkAnalyzer"/> reported on the final compilation.</summary>
    public ImmutableArray<Diagnostic> AnalyzerDiagnostics { get; }

    /// <summary>Hint name and text of every generated file.</summary>
    public IReadOnlyList<(string HintName, string Text)> GeneratedSources { get; }

    /// <summary>The compiler's diagnostics for the test sources plus the generated files.</summary>
    public ImmutableArray<Diagnostic> CompilationDiagnostics { get; }

    /// <summary>The syntax trees the generator added to the compilation.</summary>
    public ImmutableHashSet<SyntaxTree> GeneratedTrees { get; }

    /// <summary>The generator's and the analyzer's diagnostics together, in source order. (The generator's
    /// locations are rebuilt from plain data, so they name the file by path and carry no SourceTree.)</summary>
    public IReadOnlyList<Diagnostic> ProjectDiagnostics => GeneratorDiagnostics.Concat(AnalyzerDiagnostics)
        .OrderBy(d => d.Location.GetLineSpan().Path, StringComparer.Ordinal)
        .ThenBy(d => d.Location.SourceSpan.Start)
        .ToList();

    /// <summary>Compiler errors and warnings located in generated code.</summary>
    public IEnumerable<Diagnostic> GeneratedCodeProblems => CompilationDiagnostics.Where(d =>
        d.Severity >= DiagnosticSeverity.Warning && d.Location.SourceTree is { } tree && GeneratedTrees.Contains(tree));

    /// <summary>Compiler errors anywhere (test sources or generated code).</summary>
    public IEnumerable<Diagnostic> CompilationErrors => CompilationDiagnostics.Where(d => d.Severity == DiagnosticSeverity.Error);

    /// <summary>Every compiler warning and error, for "compiles cleanly" checks.</summary>
    public IEnumerable<Diagnostic> CompilationWarningsAndErrors => CompilationDiagnostics.Where(d => d.Severity >= DiagnosticSeverity.Warning);

    /// <summary>A readable listing of diagnostics for assertion messages.</summary>
    public static string Describe(IEnumerable<Diagnostic> diagnostics)
    {
        string text = string.Join(Environment.NewLine, diagnostics.Select(d => "  " + d));
        return text.Length == 0 ? "  (none)" : text;
    }
}

/// <summary>
/// Runs the project's generator and analyzer in memory, as the compiler would inside a build, over test
/// sources. Also exposes the pieces (compilation, driver) for the incremental-caching tests.
/// </summary>
public static class GeneratorHarness
{
    public static readonly CSharpParseOptions ParseOptions = new(LanguageVersion.Latest);

    /// <summary>The references of every test compilation (also of the code-fix tests' workspaces).</summary>
    internal static readonly Lazy<ImmutableArray<MetadataReference>> References = new(LoadReferences);

    /// <summary>The platform assemblies of the test host plus the Unrolled runtime, one copy of each.</summary>
    private static ImmutableArray<MetadataReference> LoadReferences()
    {
        var paths = ((string?)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Append(typeof(INetwork).Assembly.Location);
        return paths
            .GroupBy(p => Path.GetFileName(p), StringComparer.OrdinalIgnoreCase)
            .Select(g => (MetadataReference)MetadataReference.CreateFromFile(g.First()))
            .ToImmutableArray();
    }

    /// <summary>The default path of the i-th test source.</summary>
    public static string PathOf(int index) => $"Source{index}.cs";

    public static SyntaxTree ParseTree(string text, string path)
        => CSharpSyntaxTree.ParseText(text, ParseOptions, path, Encoding.UTF8);

    /// <summary>An optimized library (a Debug compilation adds UNR0018 and a second file; tests of that pass their own options).</summary>
    public static CSharpCompilationOptions CompilationOptions { get; } = new(
        OutputKind.DynamicallyLinkedLibrary,
        allowUnsafe: true,
        optimizationLevel: OptimizationLevel.Release,
        nullableContextOptions: NullableContextOptions.Enable);

    public static CSharpCompilation CreateCompilation(IEnumerable<SyntaxTree> trees, CSharpCompilationOptions? options = null)
        => CSharpCompilation.Create("UnrolledGeneratorTests", trees, References.Value, options ?? CompilationOptions);

    /// <summary>A driver for the network generator that records every step for the caching tests.</summary>
    public static GeneratorDriver CreateDriver()
        => CSharpGeneratorDriver.Create(
            new[] { new NetworkGenerator().AsSourceGenerator() },
            parseOptions: ParseOptions,
            driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: true));

    /// <summary>
    /// Runs the generator over the sources (each may carry <c>{|…|}</c> markers), then the analyzer over the
    /// resulting compilation, and compiles everything (without emitting).
    /// </summary>
    public static GeneratorOutput Run(params string[] markups) => Run(CompilationOptions, markups);

    /// <summary>As <see cref="Run(string[])"/>, with the given compilation options (e.g. diagnostic severities).</summary>
    public static GeneratorOutput Run(CSharpCompilationOptions options, params string[] markups)
    {
        var sources = markups.Select((m, i) => MarkedSource.Parse(m, PathOf(i))).ToList();
        CSharpCompilation input = CreateCompilation(sources.Select(s => ParseTree(s.Text, s.Path)), options);

        GeneratorDriver driver = CreateDriver()
            .RunGeneratorsAndUpdateCompilation(input, out Compilation output, out ImmutableArray<Diagnostic> generatorDiagnostics);
        GeneratorDriverRunResult run = driver.GetRunResult();
        Exception? thrown = run.Results.Select(r => r.Exception).FirstOrDefault(e => e is not null);
        if (thrown is not null) throw new InvalidOperationException("The generator threw: " + thrown, thrown);

        ImmutableArray<Diagnostic> analyzerDiagnostics = output
            .WithAnalyzers(ImmutableArray.Create<DiagnosticAnalyzer>(new LayerWithoutNetworkAnalyzer()))
            .GetAnalyzerDiagnosticsAsync().GetAwaiter().GetResult();

        var generated = run.Results
            .SelectMany(r => r.GeneratedSources)
            .Select(s => (s.HintName, s.SourceText.ToString()))
            .ToList();
        var generatedTrees = output.SyntaxTrees.Except(input.SyntaxTrees).ToImmutableHashSet();

        return new GeneratorOutput(sources, generatorDiagnostics, analyzerDiagnostics, generated,
            output.GetDiagnostics(), generatedTrees);
    }
}

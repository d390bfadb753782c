using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Runtime.Loader;
using System.Text;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Emit;
using Microsoft.CodeAnalysis.Text;
using Unrolled.Generator;
using Unrolled.Tests.Harness;
using Xunit;
using Xunit.Abstractions;

namespace Unrolled.Tests.Generator;

/// <summary>
/// Hundreds of random declarations, valid and invalid (see <see cref="FuzzGenerator"/>), compiled in memory
/// with the generator and its analyzer, 50 to a compilation. For every declaration:
/// <list type="number">
/// <item>the generator never throws (CS8785), the analyzer never fails (AD0001), and there is no internal
/// error (UNR0099);</item>
/// <item>the generated code compiles without errors or warnings;</item>
/// <item>every diagnostic is one of ours, located exactly on an attribute of that declaration (or on its
/// class name for class-level problems), and they agree with <see cref="FuzzOracle"/>: the attributes
/// at fault, IDs that name the fault, UNR0011 exactly where a stride drops input, and a declaration is
/// generated exactly when it is accepted;</item>
/// <item>every accepted network augments the declared class, has the sizes and tensor names LAYERS.md gives, and runs:
/// Forward and ComputeGradients (labels for cross-entropy, targets for MSE) on a batch of 1 to 3 give
/// finite outputs, loss and gradients, and so does Forward after training.</item>
/// </list>
/// The seed is fixed (set UNROLLED_FUZZ_SEED and UNROLLED_FUZZ_COUNT to explore others); each failure names
/// the seed, the declaration's index and its source.
/// </summary>
public class FuzzTests
{
    public const int DefaultSeed = 20261123;
    public const int DefaultCount = 400;
    private const int PerCompilation = 50;
    private const string Namespace = "Unrolled.Tests.Fuzz";
    private const string FilePath = "Fuzz.cs";

    private readonly ITestOutputHelper _output;

    public FuzzTests(ITestOutputHelper output)
    {
        _output = output;
    }

    /// <summary>The random source of declaration <paramref name="index"/>: each one can be drawn again alone.</summary>
    private static Random DeclarationRandom(int seed, int index) => new(unchecked(seed + 7919 * index));

    [Fact]
    public void Random_declarations_compile_and_run_or_are_rejected_on_the_attribute_at_fault()
    {
        int seed = FromEnvironment("UNROLLED_FUZZ_SEED", DefaultSeed);
        int count = FromEnvironment("UNROLLED_FUZZ_COUNT", DefaultCount);
        long started = Stopwatch.GetTimestamp();
        var decls = Enumerable.Range(0, count).Select(i => FuzzGenerator.Next(DeclarationRandom(seed, i))).ToList();
        var expected = decls.Select(FuzzOracle.Expect).ToList();

        var tally = new Tally();
        var failures = new List<string>();
        for (int start = 0; start < count; start += PerCompilation)
        {
            var chunk = Enumerable.Range(start, Math.Min(PerCompilation, count - start)).ToList();
            failures.AddRange(CheckChunk(seed, chunk, decls, expected, tally));
        }

        var elapsed = Stopwatch.GetElapsedTime(started);
        _output.WriteLine($"seed {seed}: {count} declarations fuzzed in {(count + PerCompilation - 1) / PerCompilation} compilations, {elapsed.TotalSeconds:F1} s " +
                          $"(compile {tally.CompileTime.TotalSeconds:F1} s, run {tally.RunTime.TotalSeconds:F1} s)");
        _output.WriteLine($"accepted: {tally.Accepted} (run: {tally.Run}, {tally.HugeStrides} of them with a stride above 4096; " +
                          $"with UNR0011 warnings: {tally.Warned})");
        _output.WriteLine($"rejected: {tally.Rejected}; declarations per diagnostic ID: " +
                          string.Join(", ", tally.ById.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key} {p.Value}")));
        _output.WriteLine("by scenario (accepted/all): " + string.Join(", ", decls.Select((d, i) => (d.Scenario, expected[i].Accepted))
            .GroupBy(p => p.Scenario).OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => $"{g.Key} {g.Count(p => p.Accepted)}/{g.Count()}")));
        _output.WriteLine("layer kinds declared: " + string.Join(", ", decls.SelectMany(d => d.Layers).GroupBy(l => l.Kind)
            .OrderBy(g => g.Key).Select(g => $"{g.Key} {g.Count()}")));

        Assert.True(failures.Count == 0, CompiledBatch.Report($"fuzzed declarations (seed {seed})", count, failures.Take(25).ToList())
            + (failures.Count > 25 ? $"... and {failures.Count - 25} more\n" : ""));
        // The default run must keep exercising both sides and every error a declaration can cause (UNR0017 needs a
        // project without unsafe code, UNR0099 a generator bug), or the fuzzer has gone soft.
        if (seed == DefaultSeed && count == DefaultCount)
        {
            var missing = Enumerable.Range(1, 16).Select(i => $"UNR{i:D4}").Where(id => id != "UNR0011" && !tally.ById.ContainsKey(id)).ToList();
            Assert.True(missing.Count == 0 && tally.Warned > 0, $"never reported: {string.Join(", ", missing)}{(tally.Warned > 0 ? "" : ", UNR0011")}");
            Assert.True(tally.Run >= count / 5 && tally.Rejected >= count / 4,
                $"only {tally.Run} networks ran and {tally.Rejected} were rejected out of {count}");
        }
    }

    /// <summary>Counts over the whole run.</summary>
    private sealed class Tally
    {
        public int Accepted, Rejected, Run, HugeStrides, Warned;
        public SortedDictionary<string, int> ById { get; } = new(StringComparer.Ordinal);
        public TimeSpan CompileTime, RunTime;
    }

    private static int FromEnvironment(string name, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), NumberStyles.Integer, CultureInfo.InvariantCulture, out int value) ? value : fallback;

    /// <summary>Compiles the declarations at <paramref name="indices"/> together and checks each; returns the failures.</summary>
    private static IEnumerable<string> CheckChunk(int seed, IReadOnlyList<int> indices, IReadOnlyList<FuzzDecl> decls,
        IReadOnlyList<Expectation> expected, Tally tally)
    {
        long started = Stopwatch.GetTimestamp();
        var (source, locations) = FuzzText.Source(Namespace, indices.Select(i => (i, decls[i])).ToList(), new Random(seed ^ indices[0]));
        SyntaxTree tree = GeneratorHarness.ParseTree(source, FilePath);
        CSharpCompilation input = GeneratorHarness.CreateCompilation(new[] { tree },
            GeneratorHarness.CompilationOptions.WithOptimizationLevel(OptimizationLevel.Release));
        GeneratorDriver driver = CSharpGeneratorDriver.Create(new[] { new NetworkGenerator().AsSourceGenerator() }, parseOptions: GeneratorHarness.ParseOptions)
            .RunGeneratorsAndUpdateCompilation(input, out Compilation output, out ImmutableArray<Diagnostic> generatorDiagnostics);
        GeneratorDriverRunResult run = driver.GetRunResult();
        // The analyzer skips generated code, so the input compilation is all it needs (and much faster to analyze).
        ImmutableArray<Diagnostic> analyzerDiagnostics = input
            .WithAnalyzers(ImmutableArray.Create<DiagnosticAnalyzer>(new LayerWithoutNetworkAnalyzer()))
            .GetAnalyzerDiagnosticsAsync().GetAwaiter().GetResult();
        // One emit both compiles (its diagnostics are the compiler's) and gives the assembly to run.
        using var image = new MemoryStream();
        EmitResult emitted = output.Emit(image);
        var compilerDiagnostics = emitted.Diagnostics.Where(d => d.Severity >= DiagnosticSeverity.Warning).ToList();

        var problems = indices.ToDictionary(i => i, _ => new List<string>());
        var chunkProblems = new List<string>();
        var reported = indices.ToDictionary(i => i, _ => new List<(int? Target, Diagnostic Diagnostic)>());
        int? DeclarationAt(TextSpan span)
        {
            for (int k = 0; k < indices.Count; k++)
                if (locations[k].Span.Contains(span)) return indices[k];
            return null;
        }

        foreach (Exception thrown in run.Results.Select(r => r.Exception).OfType<Exception>())
            chunkProblems.Add($"the generator threw (CS8785): {thrown}");

        // 1 and 3: every diagnostic of ours belongs to a declaration and sits on one of its attributes.
        foreach (Diagnostic d in generatorDiagnostics.Concat(analyzerDiagnostics))
        {
            bool inSource = d.Location.IsInSource || d.Location.Kind == LocationKind.ExternalFile;
            int? owner = inSource && d.Location.GetLineSpan().Path == FilePath ? DeclarationAt(d.Location.SourceSpan) : null;
            if (d.Id is "UNR0099" or "CS8785" or "AD0001" || !d.Id.StartsWith("UNR", StringComparison.Ordinal))
            {
                (owner is { } o ? problems[o] : chunkProblems).Add($"internal failure {d}");
                continue;
            }
            if (owner is not { } index)
            {
                chunkProblems.Add($"{d.Id} is not inside any declaration: {d}");
                continue;
            }
            DeclLocation where = locations[index - indices[0]];
            TextSpan span = d.Location.SourceSpan;
            int? target = span == where.ClassIdentifier ? Expectation.ClassTarget
                : span == where.Network ? Expectation.NetworkTarget
                : where.Layers.Select((s, i) => (s, i)).Where(p => p.s == span).Select(p => (int?)p.i).FirstOrDefault();
            reported[index].Add((target, d));
            if (target is null)
                problems[index].Add($"{d.Id} is on '{source.Substring(span.Start, span.Length)}', not on an attribute or the class name");
        }

        // Each generated file must add to a declared class: the one whose declaration it belongs to.
        var ownerOf = new Dictionary<SyntaxTree, int>();
        foreach (SyntaxTree generatedTree in output.SyntaxTrees.Where(t => t != tree))
        {
            SemanticModel model = output.GetSemanticModel(generatedTree);
            int? owner = generatedTree.GetRoot().DescendantNodes().OfType<ClassDeclarationSyntax>()
                .Select(c => model.GetDeclaredSymbol(c))
                .SelectMany(t => t?.DeclaringSyntaxReferences ?? ImmutableArray<SyntaxReference>.Empty)
                .Where(r => r.SyntaxTree == tree).Select(r => DeclarationAt(r.Span)).FirstOrDefault(o => o is not null);
            if (owner is { } o) ownerOf[generatedTree] = o;
            else chunkProblems.Add($"{Path.GetFileName(generatedTree.FilePath)} adds to no declared class");
        }

        // 2: the generated code compiles cleanly; the fuzz source itself must too.
        foreach (Diagnostic d in compilerDiagnostics)
        {
            SyntaxTree? at = d.Location.SourceTree;
            int? owner = at == tree ? DeclarationAt(d.Location.SourceSpan) : at is not null && ownerOf.TryGetValue(at, out int o) ? o : null;
            string text = at == tree ? $"the fuzz source does not compile (a bug of the test): {d}" : $"generated code: {d}{Context(d)}";
            (owner is { } i ? problems[i] : chunkProblems).Add(text);
        }

        var generatedFor = ownerOf.Values.ToHashSet();
        Assembly? assembly = null;
        if (emitted.Success && chunkProblems.Count == 0)
        {
            image.Position = 0;
            assembly = new AssemblyLoadContext($"fuzz{indices[0]}", isCollectible: true).LoadFromStream(image);
        }
        tally.CompileTime += Stopwatch.GetElapsedTime(started);

        started = Stopwatch.GetTimestamp();
        for (int k = 0; k < indices.Count; k++)
        {
            int index = indices[k];
            DeclLocation location = locations[k];
            Expectation e = expected[index];
            var mine = problems[index];
            CompareDiagnostics(e, reported[index], mine);
            foreach (string id in reported[index].Where(r => r.Diagnostic.Severity == DiagnosticSeverity.Error)
                         .Select(r => r.Diagnostic.Id).Distinct())
                tally.ById[id] = tally.ById.GetValueOrDefault(id) + 1;

            bool generated = generatedFor.Contains(index);
            if (e.Accepted)
            {
                tally.Accepted++;
                if (e.Warnings.Count > 0) tally.Warned++;
                if (!generated) mine.Add("accepted but nothing was generated");
                INamedTypeSymbol? type = output.GetTypeByMetadataName(location.MetadataName);
                if (type is null || !type.DeclaringSyntaxReferences.Any(r => r.SyntaxTree == tree) || type.GetMembers("Forward").IsEmpty)
                    mine.Add("the generated members do not land on the declared class");
                if (assembly is not null && generated && mine.Count == 0)
                {
                    string? failure = RunNetwork(assembly, location.MetadataName, index, e, decls[index].Layers.Any(l => l.Kind == LayerKind.BatchNorm),
                        new Random(unchecked(seed * 31 + index)));
                    if (failure is not null) mine.Add(failure);
                    tally.Run++;
                    if (decls[index].Layers.Any(l => l.Stride > 4096)) tally.HugeStrides++;
                }
            }
            else
            {
                tally.Rejected++;
                if (generated) mine.Add("rejected, yet code was generated");
            }
        }
        tally.RunTime += Stopwatch.GetElapsedTime(started);

        var failures = new List<string>();
        if (chunkProblems.Count > 0)
            failures.Add($"compilation of declarations #{indices[0]}–#{indices[^1]} (seed {seed}):\n    " + string.Join("\n    ", chunkProblems.Take(10)));
        for (int k = 0; k < indices.Count; k++)
        {
            int index = indices[k];
            if (problems[index].Count == 0) continue;
            TextSpan span = locations[k].Span;
            failures.Add($"#{index} Net{index} ({decls[index].Scenario}, seed {seed}):\n    " + string.Join("\n    ", problems[index]) +
                         $"\n    expected {expected[index]}\n    reported: " +
                         (reported[index].Count == 0 ? "nothing" : string.Join("; ", reported[index].Select(r =>
                             $"{r.Diagnostic.Id} on {(r.Target is { } t ? Expectation.TargetName(t) : "?")}: {r.Diagnostic.GetMessage(CultureInfo.InvariantCulture)}"))) +
                         "\n    " + source.Substring(span.Start, span.Length).TrimEnd().Replace("\n", "\n    "));
        }
        return failures;
    }

    /// <summary>The generated lines around a compiler diagnostic, to read the failure without the file.</summary>
    private static string Context(Diagnostic d)
    {
        if (d.Location.SourceTree is not { } tree) return "";
        var lines = tree.GetText().Lines;
        int line = d.Location.GetLineSpan().StartLinePosition.Line;
        var text = new StringBuilder();
        for (int i = Math.Max(0, line - 1); i <= Math.Min(lines.Count - 1, line + 1); i++)
            text.Append($"\n        {i + 1,5}: {lines[i]}");
        return text.ToString();
    }

    /// <summary>Check 3 against the oracle: the same attributes at fault, IDs that name the fault, warnings where due.</summary>
    private static void CompareDiagnostics(Expectation e, IReadOnlyList<(int? Target, Diagnostic Diagnostic)> reported, List<string> problems)
    {
        var errors = reported.Where(r => r.Target is not null && r.Diagnostic.Severity == DiagnosticSeverity.Error).ToList();
        foreach (var group in errors.GroupBy(r => r.Target!.Value))
        {
            string ids = string.Join(", ", group.Select(r => r.Diagnostic.Id));
            if (!e.Errors.TryGetValue(group.Key, out var expectedProblems))
            {
                problems.Add($"{ids} on {Expectation.TargetName(group.Key)}, which is not at fault");
                continue;
            }
            var allowed = expectedProblems.SelectMany(p => p).ToHashSet();
            foreach (var r in group.Where(r => !allowed.Contains(r.Diagnostic.Id)))
                problems.Add($"{r.Diagnostic.Id} on {Expectation.TargetName(group.Key)}, expected only {string.Join("|", allowed.OrderBy(x => x))} there");
        }
        foreach (var (target, expectedProblems) in e.Errors)
            foreach (var ids in expectedProblems)
                if (!errors.Any(r => r.Target == target && ids.Contains(r.Diagnostic.Id)))
                    problems.Add($"no {string.Join("|", ids)} on {Expectation.TargetName(target)}");

        var warnings = reported.Where(r => r.Target is not null && r.Diagnostic.Severity == DiagnosticSeverity.Warning).ToList();
        foreach (var r in warnings.Where(r => r.Diagnostic.Id != "UNR0011"))
            problems.Add($"unexpected warning {r.Diagnostic}");
        foreach (var group in warnings.Where(r => r.Diagnostic.Id == "UNR0011").GroupBy(r => r.Target!.Value))
            if (!(e.Warnings.Contains(group.Key) || e.OptionalWarnings.Contains(group.Key)) || group.Count() > 1)
                problems.Add($"{group.Count()} × UNR0011 on {Expectation.TargetName(group.Key)}: {group.First().Diagnostic.GetMessage(CultureInfo.InvariantCulture)}");
        foreach (int layer in e.Warnings.Where(w => !warnings.Any(r => r.Target == w && r.Diagnostic.Id == "UNR0011")))
            problems.Add($"no UNR0011 on layer #{layer}, whose stride leaves input unread");
    }

    /// <summary>Check 4: the network's sizes, then Forward, ComputeGradients and Forward again on a random batch;
    /// every value finite. Returns what went wrong, or null.</summary>
    private static string? RunNetwork(Assembly assembly, string typeName, int seed, Expectation e, bool batchNorm, Random rng)
    {
        string step = "creating the network";
        try
        {
            INetwork net = NetworkCompiler.Create(assembly, typeName, seed);
            if (net.InputSize != e.InputSize || net.OutputSize != e.OutputSize || net.ParameterCount != e.ParameterCount)
                return $"sizes: input {net.InputSize}, output {net.OutputSize}, {net.ParameterCount} parameters; " +
                       $"LAYERS.md gives {e.InputSize}, {e.OutputSize}, {e.ParameterCount}";
            if (net.Loss != (e.CrossEntropy ? Loss.CrossEntropy : Loss.MeanSquaredError))
                return $"the network's loss is {net.Loss}";
            if (!net.Tensors.Select(t => t.Name).SequenceEqual(e.TensorNames))
                return $"tensors {string.Join(", ", net.Tensors.Select(t => FuzzText.String(t.Name)))}; expected {string.Join(", ", e.TensorNames.Select(FuzzText.String))}";

            // Batch norm refuses to train on one value per channel (as PyTorch does), so it gets two samples or more.
            int batch = rng.Next(batchNorm ? 2 : 1, 4);
            float[] input = Enumerable.Range(0, batch * net.InputSize).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
            var output = new float[batch * net.OutputSize];
            step = $"Forward (batch {batch})";
            net.Forward(input, output);
            if (FirstNonFinite(output) is { } bad) return $"{step}: output[{bad}] = {output[bad]}";

            float loss;
            if (e.CrossEntropy)
            {
                int[] labels = Enumerable.Range(0, batch).Select(_ => rng.Next(net.OutputSize)).ToArray();
                step = $"ComputeGradients with labels {string.Join(", ", labels)}";
                loss = net.ComputeGradients(input, labels);
            }
            else
            {
                float[] targets = Enumerable.Range(0, batch * net.OutputSize).Select(_ => (float)rng.NextDouble()).ToArray();
                step = "ComputeGradients with targets";
                loss = net.ComputeGradients(input, targets);
            }
            if (!float.IsFinite(loss) || loss < 0) return $"{step}: loss {loss}";
            float[] gradients = net.Gradients.ToArray();
            if (gradients.Length != e.ParameterCount) return $"{step}: {gradients.Length} gradients for {e.ParameterCount} parameters";
            if (FirstNonFinite(gradients) is { } badGradient) return $"{step}: gradient {Locate(net, badGradient)} = {gradients[badGradient]}";

            step = "Forward after ComputeGradients";
            net.Forward(input, output);
            if (FirstNonFinite(output) is { } again) return $"{step}: output[{again}] = {output[again]}";
            return null;
        }
        catch (Exception ex)
        {
            return $"{step} threw {ex.GetType().Name}: {ex.Message}";
        }
    }

    private static int? FirstNonFinite(float[] values)
    {
        int i = Array.FindIndex(values, v => !float.IsFinite(v));
        return i < 0 ? null : i;
    }

    /// <summary>The state_dict name and index of a flat parameter index.</summary>
    private static string Locate(INetwork net, int index) =>
        net.Tensors.Where(t => t.Kind == TensorKind.Parameter && index >= t.Offset && index < t.Offset + t.Length)
            .Select(t => $"{t.Name}[{index - t.Offset}]").FirstOrDefault() ?? $"#{index}";
}

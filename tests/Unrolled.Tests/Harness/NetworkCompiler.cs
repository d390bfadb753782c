using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Runtime.Loader;
using System.Text;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace Unrolled.Tests.Harness;

/// <summary>What one run of the generator over some source produced.</summary>
/// <param name="GeneratedSources">Hint name and text of every generated file.</param>
/// <param name="GeneratorDiagnostics">Diagnostics the generator reported (including CS8785 if it threw).</param>
/// <param name="CompilationDiagnostics">Diagnostics of the compilation with the generated files added.</param>
/// <param name="Compilation">The compilation with the generated files added.</param>
public sealed record GeneratorRun(
    IReadOnlyList<(string HintName, string Text)> GeneratedSources,
    ImmutableArray<Diagnostic> GeneratorDiagnostics,
    ImmutableArray<Diagnostic> CompilationDiagnostics,
    Compilation Compilation)
{
    public IEnumerable<Diagnostic> Errors =>
        GeneratorDiagnostics.Concat(CompilationDiagnostics).Where(d => d.Severity == DiagnosticSeverity.Error);
}

/// <summary>
/// Compiles network declarations in memory: the source is parsed, the project's generator runs over it as
/// it would inside the compiler, and the result is emitted and loaded so that tests can use the networks
/// through <see cref="INetwork"/>.
/// </summary>
public static class NetworkCompiler
{
    private static readonly Lazy<MetadataReference[]> References = new(LoadReferences);
    private static int _assemblyCounter;

    private static MetadataReference[] LoadReferences()
    {
        var paths = ((string?)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .ToList();
        paths.Add(typeof(INetwork).Assembly.Location);
        return paths
            .Distinct(StringComparer.Ordinal)
            .GroupBy(Path.GetFileName, StringComparer.OrdinalIgnoreCase) // one copy of each assembly
            .Select(g => (MetadataReference)MetadataReference.CreateFromFile(g.First()))
            .ToArray();
    }

    /// <summary>Parses <paramref name="source"/>, runs the generator over it and compiles the result (no emit).</summary>
    public static GeneratorRun Run(string source)
    {
        var parseOptions = new CSharpParseOptions(LanguageVersion.Latest);
        var compilation = CSharpCompilation.Create(
            $"UnrolledNetworks{Interlocked.Increment(ref _assemblyCounter)}_{Guid.NewGuid():N}",
            new[] { CSharpSyntaxTree.ParseText(source, parseOptions, path: "Networks.cs") },
            References.Value,
            new CSharpCompilationOptions(
                OutputKind.DynamicallyLinkedLibrary,
                optimizationLevel: OptimizationLevel.Release,
                allowUnsafe: true,
                nullableContextOptions: NullableContextOptions.Enable));

        GeneratorDriver driver = CSharpGeneratorDriver.Create(
            new[] { new global::Unrolled.Generator.NetworkGenerator().AsSourceGenerator() },
            parseOptions: parseOptions);
        driver = driver.RunGeneratorsAndUpdateCompilation(compilation, out var output, out var generatorDiagnostics);

        var result = driver.GetRunResult();
        var sources = result.Results
            .SelectMany(r => r.GeneratedSources)
            .Select(s => (s.HintName, s.SourceText.ToString()))
            .ToList();
        var thrown = result.Results.Where(r => r.Exception != null).Select(r => r.Exception!).ToList();
        if (thrown.Count > 0)
            throw new InvalidOperationException("the generator threw: " + thrown[0], thrown[0]);

        return new GeneratorRun(sources, generatorDiagnostics, output.GetDiagnostics(), output);
    }

    /// <summary>Generates, compiles and loads <paramref name="source"/>; throws with the errors when any step fails.</summary>
    public static Assembly CompileAndLoad(string source)
    {
        var run = Run(source);
        var errors = run.Errors.ToList();
        if (errors.Count > 0) throw new InvalidOperationException(DescribeErrors(run, errors));

        using var image = new MemoryStream();
        var emitted = run.Compilation.Emit(image);
        if (!emitted.Success)
            throw new InvalidOperationException(DescribeErrors(run, emitted.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error).ToList()));
        image.Position = 0;
        // A new collectible context that resolves nothing itself falls back to the default context for
        // every reference, so "Unrolled" binds to the very runtime assembly the tests use and casts work.
        var context = new AssemblyLoadContext(run.Compilation.AssemblyName, isCollectible: true);
        return context.LoadFromStream(image);
    }

    /// <summary>An instance of a compiled network class.</summary>
    public static INetwork Create(Assembly assembly, string typeName, int seed = 0)
    {
        var type = assembly.GetType(typeName, throwOnError: false)
            ?? throw new InvalidOperationException($"type {typeName} not found in the generated assembly; it has: " +
                string.Join(", ", assembly.GetTypes().Select(t => t.FullName)));
        var instance = Activator.CreateInstance(type, seed)
            ?? throw new InvalidOperationException($"could not create {typeName}");
        return instance as INetwork
            ?? throw new InvalidOperationException($"{typeName} does not implement Unrolled.INetwork (or binds another copy of it)");
    }

    /// <summary>Every error with its location, the offending source line, and for errors in generated files
    /// a few surrounding lines so that the failure can be read without the files.</summary>
    private static string DescribeErrors(GeneratorRun run, IReadOnlyList<Diagnostic> errors)
    {
        var text = new StringBuilder($"{errors.Count} error(s) compiling the networks:\n");
        foreach (var error in errors.Take(20))
        {
            text.AppendLine(error.ToString());
            var tree = error.Location.SourceTree;
            if (tree == null) continue;
            var lines = tree.GetText().Lines;
            int line = error.Location.GetLineSpan().StartLinePosition.Line;
            for (int i = Math.Max(0, line - 2); i <= Math.Min(lines.Count - 1, line + 2); i++)
                text.AppendLine($"    {(i == line ? ">" : " ")} {i + 1,5}: {lines[i]}");
        }
        if (errors.Count > 20) text.AppendLine($"... and {errors.Count - 20} more");
        return text.ToString();
    }
}

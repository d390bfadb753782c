using System;
using System.Collections.Generic;
using System.Linq;
using System.Reflection;
using System.Text;
using Unrolled.Tests.Reference;

namespace Unrolled.Tests.Harness;

/// <summary>
/// Many declarations compiled together in one in-memory compilation (one generator run and one emit for
/// dozens of networks keeps the random tests fast), each paired with its naive reference.
/// </summary>
public sealed class CompiledBatch
{
    public const string Namespace = "Unrolled.Tests.Generated";

    private readonly Assembly _assembly;

    private CompiledBatch(Assembly assembly, IReadOnlyList<NetDecl> decls)
    {
        _assembly = assembly;
        Decls = decls;
    }

    public IReadOnlyList<NetDecl> Decls { get; }

    public static string ClassName(int index) => $"Net{index}";

    public static string Source(IReadOnlyList<NetDecl> decls) =>
        NetDecl.ToSourceFile(Namespace, decls.Select((d, i) => (ClassName(i), d)));

    public static CompiledBatch Compile(IReadOnlyList<NetDecl> decls) =>
        new(NetworkCompiler.CompileAndLoad(Source(decls)), decls);

    public INetwork Create(int index, int seed = 0) =>
        NetworkCompiler.Create(_assembly, $"{Namespace}.{ClassName(index)}", seed);

    /// <summary>Runs a check over every network of the batch and collects the failures (with the declaration
    /// that failed) rather than stopping at the first, so one run shows every mismatch.</summary>
    public IReadOnlyList<string> CheckAll(Func<INetwork, NaiveNetwork, int, string?> check)
    {
        var failures = new List<string>();
        for (int i = 0; i < Decls.Count; i++)
        {
            string? problem;
            try
            {
                problem = check(Create(i, seed: i), new NaiveNetwork(Decls[i]), i);
            }
            catch (Exception e)
            {
                problem = $"threw {e.GetType().Name}: {e.Message}";
            }
            if (problem != null) failures.Add($"{ClassName(i)} [{Decls[i].Describe()}]\n    {problem}");
        }
        return failures;
    }

    /// <summary>For a declaration whose forward fails, the shortest prefix of its layers that already fails,
    /// so that the report names the first layer that goes wrong. The prefixes are declared with MSE (their
    /// output may be an image) and compiled together.</summary>
    public static string ShortestFailingForwardPrefix(NetDecl decl, int batch, int seed)
    {
        var prefixes = Enumerable.Range(1, decl.Layers.Count)
            .Select(n => new NetDecl(decl.Input, Loss.MeanSquaredError, decl.Layers.Take(n)))
            .ToList();
        CompiledBatch compiled;
        try
        {
            compiled = Compile(prefixes);
        }
        catch (Exception e)
        {
            return "(prefixes did not compile: " + e.Message.Split('\n')[0] + ")";
        }
        for (int i = 0; i < prefixes.Count; i++)
        {
            string? problem = Parity.ForwardMismatch(compiled.Create(i), new NaiveNetwork(prefixes[i]), batch, seed);
            if (problem != null)
            {
                var shapes = prefixes[i].OutputShapes();
                var input = i == 0 ? decl.Input : shapes[i - 1];
                return $"first failing layer #{i}: {decl.Layers[i].ToAttribute()} on {input} → {shapes[i]}; " +
                       $"minimal prefix: {prefixes[i].Describe()}; {problem}";
            }
        }
        return "(every prefix passes alone)";
    }

    /// <summary>A failure report: count, and each failure on its own lines.</summary>
    public static string Report(string what, int total, IReadOnlyList<string> failures)
    {
        var text = new StringBuilder($"{failures.Count} of {total} {what} failed:\n");
        foreach (var f in failures) text.AppendLine(f);
        return text.ToString();
    }
}

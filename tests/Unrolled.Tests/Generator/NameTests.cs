using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Reflection;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Unrolled.Generator;
using Unrolled.Tests.Harness;
using Xunit;

namespace Unrolled.Tests.Generator;

/// <summary>
/// The user's names in generated code: layer names reach string literals and comments exactly and harmlessly.
/// </summary>
public class NameTests
{
    /// <summary>Layer names with quotes, backslashes, escapes, XML, comment markers and characters that are written
    /// escaped: each tensor is named exactly, the generated code compiles without a warning (also with XML
    /// documentation checked), and the summary and error messages quote the name as it is.</summary>
    [Fact]
    public void Layer_names_reach_tensors_summary_and_messages_exactly()
    {
        string[] names =
        {
            "a\"b", "a\\b", "\\u0041", "\\\");}//", "*//*", "<b>&amp;</b>", "]]>", "\u202Eevil", "\uD83D\uDE00", "\uD800", "\uFEFF",
            "\uE000", "zero\u200Bwidth", "名前",
        };
        string Literal(string s) => FuzzText.String(s);
        string layers = string.Join(" ", names.Select((n, i) => i % 2 == 0 ? $"[Dense(3, Name = {Literal(n)})]" : $"[BatchNorm(Name = {Literal(n)})]"));
        string source = $"using Unrolled;\n\nnamespace Tests;\n\n[Network(4)] {layers} [Dense(2)]\npublic partial class Net {{ }}\n";

        var parseOptions = GeneratorHarness.ParseOptions.WithDocumentationMode(DocumentationMode.Diagnose);
        CSharpCompilation input = GeneratorHarness.CreateCompilation(new[] { CSharpSyntaxTree.ParseText(source, parseOptions, "Net.cs") });
        CSharpGeneratorDriver.Create(new[] { new NetworkGenerator().AsSourceGenerator() }, parseOptions: parseOptions)
            .RunGeneratorsAndUpdateCompilation(input, out Compilation output, out ImmutableArray<Diagnostic> generatorDiagnostics);
        Assert.Empty(generatorDiagnostics);
        var generated = output.SyntaxTrees.Except(input.SyntaxTrees).ToHashSet();
        var problems = output.GetDiagnostics().Where(d => d.Severity >= DiagnosticSeverity.Warning && generated.Contains(d.Location.SourceTree!)).ToList();
        Assert.True(problems.Count == 0, string.Join("\n", problems));

        INetwork net = NetworkCompiler.Create(NetworkCompiler.CompileAndLoad(source), "Tests.Net");
        var expected = names.SelectMany((n, i) => i % 2 == 0
                ? new[] { n + ".weight", n + ".bias" }
                : new[] { n + ".weight", n + ".bias", n + ".running_mean", n + ".running_var", n + ".num_batches_tracked" })
            .Concat(new[] { $"dense{names.Length / 2 + 1}.weight", $"dense{names.Length / 2 + 1}.bias" });
        Assert.Equal(expected, net.Tensors.Select(t => t.Name));
        string summary = (string)net.GetType().GetProperty("Summary")!.GetValue(null)!;
        Assert.All(names, n => Assert.Contains(n, summary, StringComparison.Ordinal));
        // Batch norm on a vector refuses a batch of one in training, naming the layer.
        var e = Assert.Throws<ArgumentException>(() => net.ComputeGradients(new float[4], new[] { 0 }));
        Assert.StartsWith(names[1] + " (batch norm)", e.Message);
    }
}

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
/// The user's names in generated code: layer names reach string literals and comments exactly and harmlessly,
/// class and namespace names may be keywords or words the generated code uses, and no network class can be named
/// like a member the generated code declares (the parser's list is checked against what the emitter writes).
/// </summary>
public class NameTests
{
    /// <summary>Networks that between them make the emitter write every member it can: every layer kind, a
    /// convolution after the first layer with stride 1 (packed input gradient) and with stride 2, batch norm on a
    /// vector (the batch-of-one check), a softmax fused with cross-entropy.</summary>
    private const string EveryMember = """
        [Network(3, 16, 16)]
        [Conv2D(8, 3, 5, Padding = 1, Bias = false, Activation = Activation.LeakyReLU)] [LocalResponseNorm(3)] [AvgPool2D(2)] [BatchNorm] [Tanh]
        [Conv2D(4, 3, Padding = 1)] [Conv2D(4, 3, Stride = 2, Padding = Padding.Same)] [MaxPool2D(2, Padding = Padding.Same)] [Sigmoid] [GlobalAvgPool2D] [BatchNorm]
        [Dense(6, Activation = Activation.Tanh)] [LeakyReLU(0.2)] [Dropout(0.5)] [Flatten] [Dense(3, Bias = false)] [ReLU] [Softmax]
        public partial class Net { }

        [Network(4, Loss = Loss.MeanSquaredError)] [Dense(3)] [Dense(2)]
        public partial class Small { }
        """;

    [Fact]
    public void Every_member_of_the_generated_code_is_a_name_the_parser_refuses_for_the_class()
    {
        GeneratorOutput run = GeneratorHarness.Run(DiagnosticTests.File(EveryMember));
        Assert.Empty(run.ProjectDiagnostics);
        var declared = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var (_, text) in run.GeneratedSources)
        {
            // The network's partial class; the kernels' static class in Unrolled.Generated.* adds no member to it.
            var type = CSharpSyntaxTree.ParseText(text).GetRoot().DescendantNodes().OfType<ClassDeclarationSyntax>()
                .Single(c => c.Parent is not BaseNamespaceDeclarationSyntax ns || !ns.Name.ToString().StartsWith("Unrolled.Generated", StringComparison.Ordinal));
            foreach (MemberDeclarationSyntax member in type.Members)
            {
                switch (member)
                {
                    case BaseFieldDeclarationSyntax field:
                        declared.UnionWith(field.Declaration.Variables.Select(v => v.Identifier.ValueText));
                        break;
                    case MethodDeclarationSyntax { ExplicitInterfaceSpecifier: null } method:
                        declared.Add(method.Identifier.ValueText);
                        break;
                    case PropertyDeclarationSyntax { ExplicitInterfaceSpecifier: null } property:
                        declared.Add(property.Identifier.ValueText);
                        break;
                    case BaseTypeDeclarationSyntax nested:
                        declared.Add(nested.Identifier.ValueText);
                        break;
                    case ConstructorDeclarationSyntax or MethodDeclarationSyntax or PropertyDeclarationSyntax:
                        break; // named like the class, or an explicit interface implementation: no member name
                    default:
                        Assert.Fail($"a member of a kind this test does not know: {member.Kind()}");
                        break;
                }
            }
        }
        var unknown = declared.Where(name => !GeneratedNames.IsMember(name)).ToList();
        Assert.True(unknown.Count == 0, "The generated code declares members that GeneratedNames does not list (a class could be named like them): " +
                                        string.Join(", ", unknown));
        // And the list holds nothing the emitter no longer writes.
        var stale = GeneratedNames.Members.Where(name => !declared.Contains(name)).ToList();
        Assert.True(stale.Count == 0, "GeneratedNames lists members the generated code does not declare: " + string.Join(", ", stale));
    }

    /// <summary>Class and namespace names that are keywords, or words the generated code used to declare as using
    /// aliases (Vec512 …), or the names of the types it uses: the network compiles cleanly and runs.</summary>
    [Theory]
    [InlineData("Tests", "@class")]
    [InlineData("Tests", "@var")]
    [InlineData("Tests", "@nameof")]
    [InlineData("Tests", "@record")]
    [InlineData("Tests", "Vec512")]
    [InlineData("Tests", "Vec128F")]
    [InlineData("Tests", "Vector512")]
    [InlineData("Vec512", "Net")]
    [InlineData("A.Vec256F", "Net")]
    [InlineData("@var.@nameof", "Net")]
    [InlineData("@class.Vector128", "Vec128")]
    [InlineData("System.Runtime.Intrinsics", "Net")]
    public void Class_and_namespace_names_that_are_keywords_or_words_of_the_generated_code(string ns, string className)
    {
        // A user type named like a former alias next to the network, too.
        string source = $"using Unrolled;\n\nnamespace {ns}\n{{\n    public class Vec256 {{ }}\n\n" +
                        $"    [Network(1, 6, 6)] [Conv2D(2, 3)] [Conv2D(2, 3, Padding = 1)] [MaxPool2D(2)] [Dense(3)]\n    public partial class {className} {{ }}\n}}\n";
        GeneratorRun run = NetworkCompiler.Run(source);
        Assert.Empty(run.GeneratorDiagnostics);
        var problems = run.CompilationDiagnostics.Where(d => d.Severity >= DiagnosticSeverity.Warning).ToList();
        Assert.True(problems.Count == 0, string.Join("\n", problems));

        Assembly assembly = NetworkCompiler.CompileAndLoad(source);
        INetwork net = NetworkCompiler.Create(assembly, $"{ns}.{className}".Replace("@", ""));
        Assert.Equal(className.TrimStart('@'), net.NetworkName);
        var output = new float[3];
        net.Forward(new float[36], output);
        Assert.True(float.IsFinite(net.ComputeGradients(new float[36], new[] { 1 })));
    }

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

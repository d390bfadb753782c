using System;
using System.Collections;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Reflection;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Unrolled.Generator;
using Xunit;

namespace Unrolled.Tests.Generator;

/// <summary>
/// Incremental caching: an edit that does not change a network must leave the generator's later steps and
/// its source output cached, and an edit that does change it must flow through. The steps are the ones
/// named in <see cref="NetworkGenerator.Steps"/>.
/// </summary>
public class IncrementalTests
{
    private const string NetworkPath = "LeNet5.cs";

    private static string LeNet5(int firstFilters = 6, string body = "") => $$"""
        using Unrolled;

        namespace Tests;

        [Network(1, 28, 28)]
        [Conv2D({{firstFilters}}, 5, Padding = 2, Activation = Activation.ReLU)]
        [MaxPool2D(2)]
        [Conv2D(16, 5, Activation = Activation.ReLU)]
        [MaxPool2D(2)]
        [Dense(120, Activation = Activation.ReLU)]
        [Dense(84, Activation = Activation.ReLU)]
        [Dense(10)]
        public partial class LeNet5
        {
            {{body}}
        }
        """;

    private static string OtherPart(int value) => $$"""
        namespace Tests;

        partial class LeNet5
        {
            void Foo() { int x = {{value}}; }
        }
        """;

    private static string Unrelated(int value) => $$"""
        namespace Elsewhere;

        public class Unrelated
        {
            public int Value => {{value}};
        }
        """;

    private static SyntaxTree Tree(string text, string path) => GeneratorHarness.ParseTree(text, path);

    private static CSharpCompilation Compile(params SyntaxTree[] trees) => GeneratorHarness.CreateCompilation(trees);

    /// <summary>Runs the driver and returns it with the result of the (only) generator.</summary>
    private static (GeneratorDriver Driver, GeneratorRunResult Result) Run(GeneratorDriver driver, Compilation compilation)
    {
        driver = driver.RunGenerators(compilation);
        GeneratorRunResult result = Assert.Single(driver.GetRunResult().Results);
        Assert.Null(result.Exception);
        return (driver, result);
    }

    /// <summary>The reasons of every output of a tracked step (empty when the step has not run).</summary>
    private static IReadOnlyList<IncrementalStepRunReason> Reasons(GeneratorRunResult result, string step)
        => result.TrackedSteps.TryGetValue(step, out ImmutableArray<IncrementalGeneratorRunStep> runs)
            ? runs.SelectMany(r => r.Outputs).Select(o => o.Reason).ToList()
            : Array.Empty<IncrementalStepRunReason>();

    private static IReadOnlyList<IncrementalStepRunReason> SourceOutputReasons(GeneratorRunResult result)
        => result.TrackedOutputSteps.TryGetValue(WellKnownGeneratorOutputs.SourceOutput, out ImmutableArray<IncrementalGeneratorRunStep> runs)
            ? runs.SelectMany(r => r.Outputs).Select(o => o.Reason).ToList()
            : Array.Empty<IncrementalStepRunReason>();

    private static void AssertAll(IReadOnlyList<IncrementalStepRunReason> reasons, string what, params IncrementalStepRunReason[] allowed)
    {
        Assert.True(reasons.Count > 0, $"{what}: the step produced no outputs");
        Assert.True(reasons.All(allowed.Contains), $"{what}: expected {string.Join(" or ", allowed)} but got {string.Join(", ", reasons)}");
    }

    /// <summary>Asserts that the network's model and source were not rebuilt.</summary>
    private static void AssertNetworkCached(GeneratorRunResult result)
    {
        AssertAll(Reasons(result, NetworkGenerator.Steps.Parse), "Parse", IncrementalStepRunReason.Cached, IncrementalStepRunReason.Unchanged);
        AssertAll(Reasons(result, NetworkGenerator.Steps.Spec), "Spec", IncrementalStepRunReason.Cached, IncrementalStepRunReason.Unchanged);
        AssertAll(SourceOutputReasons(result), "SourceOutput", IncrementalStepRunReason.Cached);
    }

    [Fact]
    public void The_first_run_produces_new_outputs()
    {
        var (_, result) = Run(GeneratorHarness.CreateDriver(), Compile(Tree(LeNet5(), NetworkPath)));

        AssertAll(Reasons(result, NetworkGenerator.Steps.Parse), "Parse", IncrementalStepRunReason.New);
        AssertAll(Reasons(result, NetworkGenerator.Steps.Spec), "Spec", IncrementalStepRunReason.New);
        AssertAll(SourceOutputReasons(result), "SourceOutput", IncrementalStepRunReason.New);
        Assert.Empty(Reasons(result, NetworkGenerator.Steps.Diagnostics)); // a valid network has nothing to report
        Assert.Equal("Tests.LeNet5.g.cs", Assert.Single(result.GeneratedSources).HintName);
    }

    [Fact]
    public void Adding_an_unrelated_file_leaves_the_outputs_cached()
    {
        CSharpCompilation compilation = Compile(Tree(LeNet5(), NetworkPath));
        var (driver, _) = Run(GeneratorHarness.CreateDriver(), compilation);

        var (_, result) = Run(driver, compilation.AddSyntaxTrees(Tree(Unrelated(1), "Unrelated.cs")));

        AssertNetworkCached(result);
    }

    [Fact]
    public void Editing_an_unrelated_class_leaves_the_outputs_cached()
    {
        SyntaxTree unrelated = Tree(Unrelated(1), "Unrelated.cs");
        CSharpCompilation compilation = Compile(Tree(LeNet5(), NetworkPath), unrelated);
        var (driver, _) = Run(GeneratorHarness.CreateDriver(), compilation);

        var (_, result) = Run(driver, compilation.ReplaceSyntaxTree(unrelated, Tree(Unrelated(2), "Unrelated.cs")));

        AssertNetworkCached(result);
    }

    [Fact]
    public void Typing_in_a_method_of_another_part_of_the_network_class_leaves_the_spec_cached()
    {
        SyntaxTree part = Tree(OtherPart(1), "LeNet5.Other.cs");
        CSharpCompilation compilation = Compile(Tree(LeNet5(), NetworkPath), part);
        var (driver, _) = Run(GeneratorHarness.CreateDriver(), compilation);

        var (_, result) = Run(driver, compilation.ReplaceSyntaxTree(part, Tree(OtherPart(2), "LeNet5.Other.cs")));

        AssertNetworkCached(result);
    }

    [Fact]
    public void Typing_in_a_method_of_the_network_declaration_itself_leaves_the_spec_cached()
    {
        SyntaxTree network = Tree(LeNet5(body: "void Foo() { int x = 1; }"), NetworkPath);
        CSharpCompilation compilation = Compile(network);
        var (driver, _) = Run(GeneratorHarness.CreateDriver(), compilation);

        var (_, result) = Run(driver, compilation.ReplaceSyntaxTree(network, Tree(LeNet5(body: "void Foo() { int x = 2; }"), NetworkPath)));

        AssertNetworkCached(result);
    }

    [Fact]
    public void Changing_a_filter_count_regenerates_the_source()
    {
        SyntaxTree network = Tree(LeNet5(firstFilters: 6), NetworkPath);
        CSharpCompilation compilation = Compile(network);
        var (driver, first) = Run(GeneratorHarness.CreateDriver(), compilation);

        var (_, result) = Run(driver, compilation.ReplaceSyntaxTree(network, Tree(LeNet5(firstFilters: 8), NetworkPath)));

        AssertAll(Reasons(result, NetworkGenerator.Steps.Parse), "Parse", IncrementalStepRunReason.Modified);
        AssertAll(Reasons(result, NetworkGenerator.Steps.Spec), "Spec", IncrementalStepRunReason.Modified);
        AssertAll(SourceOutputReasons(result), "SourceOutput", IncrementalStepRunReason.Modified);
        string before = Assert.Single(first.GeneratedSources).SourceText.ToString();
        string after = Assert.Single(result.GeneratedSources).SourceText.ToString();
        Assert.Contains("\"conv1.weight\", new int[] { 6, 1, 5, 5 }", before);
        Assert.Contains("\"conv1.weight\", new int[] { 8, 1, 5, 5 }", after);
    }

    [Fact]
    public void Diagnostics_are_cached_across_unrelated_edits_and_rerun_when_the_error_changes()
    {
        static string Broken(string p) => $"using Unrolled;\nnamespace Tests;\n[Network(4)] [Dropout({p})] [Dense(2)]\npublic partial class Broken {{ }}\n";
        SyntaxTree network = Tree(Broken("1"), "Broken.cs");
        CSharpCompilation compilation = Compile(network);
        var (driver, first) = Run(GeneratorHarness.CreateDriver(), compilation);
        AssertAll(Reasons(first, NetworkGenerator.Steps.Diagnostics), "Diagnostics", IncrementalStepRunReason.New);
        Assert.Empty(first.GeneratedSources);

        compilation = compilation.AddSyntaxTrees(Tree(Unrelated(1), "Unrelated.cs"));
        var (driver2, unrelatedEdit) = Run(driver, compilation);
        AssertAll(Reasons(unrelatedEdit, NetworkGenerator.Steps.Diagnostics), "Diagnostics", IncrementalStepRunReason.Cached, IncrementalStepRunReason.Unchanged);

        var (_, realEdit) = Run(driver2, compilation.ReplaceSyntaxTree(network, Tree(Broken("1.5"), "Broken.cs")));
        AssertAll(Reasons(realEdit, NetworkGenerator.Steps.Diagnostics), "Diagnostics", IncrementalStepRunReason.Modified);
        Assert.Contains("but is 1.5", Assert.Single(realEdit.Diagnostics).GetMessage());
    }

    /// <summary>The value of the single output of a step, from a fresh driver over a freshly parsed source.</summary>
    private static object ParseFresh(string source, string step)
    {
        var (_, result) = Run(GeneratorHarness.CreateDriver(), Compile(Tree(source, NetworkPath)));
        return Assert.Single(result.TrackedSteps[step].SelectMany(r => r.Outputs)).Value;
    }

    [Theory]
    [InlineData(NetworkGenerator.Steps.Parse)]
    [InlineData(NetworkGenerator.Steps.Spec)]
    public void The_model_is_equatable_across_independent_parses(string step)
    {
        object first = ParseFresh(LeNet5(), step);
        object second = ParseFresh(LeNet5(), step);

        Assert.NotSame(first, second);
        Assert.Equal(first, second);
        Assert.Equal(first.GetHashCode(), second.GetHashCode());
        Assert.NotEqual(first, ParseFresh(LeNet5(firstFilters: 7), step));
    }

    [Fact]
    public void A_parse_result_with_diagnostics_is_equatable_across_independent_parses()
    {
        string broken = "using Unrolled;\nnamespace Tests;\n[Network(1, 4, 4)] [Conv2D(2, 5)] [Dense(2)]\npublic partial class Broken { }\n";
        object first = ParseFresh(broken, NetworkGenerator.Steps.Parse);
        object second = ParseFresh(broken, NetworkGenerator.Steps.Parse);

        Assert.Equal(first, second);
        Assert.Equal(first.GetHashCode(), second.GetHashCode());
    }

    [Theory]
    [InlineData(NetworkGenerator.Steps.Parse)]
    [InlineData(NetworkGenerator.Steps.Spec)]
    public void The_model_holds_nothing_from_the_compilation(string step)
    {
        AssertHoldsNoCompilationObjects(ParseFresh(LeNet5(), step));
        string broken = "using Unrolled;\nnamespace Tests;\n[Network(1, 7, 7)] [MaxPool2D(2)] [Dense(2)]\npublic partial class Warned { }\n";
        AssertHoldsNoCompilationObjects(ParseFresh(broken, step)); // carries a UNR0011 warning
    }

    /// <summary>Walks the object graph of a model value and fails on any symbol, syntax, location or compilation.</summary>
    private static void AssertHoldsNoCompilationObjects(object root)
    {
        var seen = new HashSet<object>(ReferenceEqualityComparer.Instance);
        var pending = new Stack<(object Value, string Path)>();
        pending.Push((root, root.GetType().Name));
        while (pending.Count > 0)
        {
            var (value, path) = pending.Pop();
            Type type = value.GetType();
            if (type.IsPrimitive || type.IsEnum || value is string or decimal) continue;
            if (!type.IsValueType && !seen.Add(value)) continue;

            Assert.False(value is ISymbol or SyntaxNode or SyntaxTree or Location or Compilation or SemanticModel or AttributeData,
                $"{path} holds a {type.FullName}, which ties the model to one compilation and defeats caching");

            if (value is IEnumerable items)
            {
                int i = 0;
                foreach (object? item in items)
                {
                    if (item is not null) pending.Push((item, $"{path}[{i}]"));
                    i++;
                }
            }
            foreach (FieldInfo field in type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic))
            {
                object? fieldValue = field.GetValue(value);
                if (fieldValue is not null) pending.Push((fieldValue, $"{path}.{field.Name}"));
            }
        }
    }
}

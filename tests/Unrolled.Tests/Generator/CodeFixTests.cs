using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Reflection;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Text;
using Unrolled.CodeFixes;
using Xunit;
using static Unrolled.Tests.Generator.DiagnosticTests;

namespace Unrolled.Tests.Generator;

/// <summary>
/// The IDE code fixes, run as the IDE runs them: the sources are documents of an in-memory workspace, the
/// generator reports its diagnostics on the project's compilation, the provider registers its fixes for one
/// of them, and the fix's operations are applied. Each test asserts the exact fixed text, then runs the
/// generator again to show that the fix fixes: no diagnostic left and a project that compiles.
/// </summary>
public sealed class CodeFixTests : IDisposable
{
    private readonly AdhocWorkspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    // ---- The providers ----

    [Fact]
    public void Each_provider_fixes_its_diagnostics_for_CSharp_and_fixes_all_in_a_batch()
    {
        Assert.Equal(new[] { "UNR0001" }, new MakePartialCodeFixProvider().FixableDiagnosticIds);
        Assert.Equal(new[] { "UNR0005", "UNR0011" }, new UseSamePaddingCodeFixProvider().FixableDiagnosticIds);
        Assert.Equal(new[] { "UNR0006" }, new FlattenBeforeSoftmaxCodeFixProvider().FixableDiagnosticIds);
        foreach (CodeFixProvider provider in Providers)
        {
            Assert.Same(WellKnownFixAllProviders.BatchFixer, provider.GetFixAllProvider());
            var export = provider.GetType().GetCustomAttribute<ExportCodeFixProviderAttribute>();
            Assert.NotNull(export);
            Assert.Equal(new[] { LanguageNames.CSharp }, export.Languages);
        }
    }

    [Fact]
    public void Every_fixable_id_is_a_diagnostic_of_the_generator()
    {
        foreach (string id in Providers.SelectMany(p => p.FixableDiagnosticIds))
            Assert.Equal(id, Unrolled.Generator.Diagnostics.ById(id).Id);
    }

    [Fact]
    public void The_code_fix_assembly_holds_no_analyzer_or_generator_so_the_compiler_never_loads_it()
    {
        // The compiler instantiates only [DiagnosticAnalyzer] and [Generator] types from analyzers/dotnet/cs;
        // one here would fail to load in csc (no Microsoft.CodeAnalysis.Workspaces there) with warning CS8032.
        Type[] types = typeof(MakePartialCodeFixProvider).Assembly.GetTypes();
        Assert.DoesNotContain(types, t => typeof(DiagnosticAnalyzer).IsAssignableFrom(t)
            || t.IsDefined(typeof(DiagnosticAnalyzerAttribute), inherit: false) || t.IsDefined(typeof(GeneratorAttribute), inherit: false));
        Assert.Equal(Providers.Select(p => p.GetType()).OrderBy(t => t.Name),
            types.Where(t => typeof(CodeFixProvider).IsAssignableFrom(t)).OrderBy(t => t.Name));
    }

    private static readonly CodeFixProvider[] Providers =
        { new MakePartialCodeFixProvider(), new UseSamePaddingCodeFixProvider(), new FlattenBeforeSoftmaxCodeFixProvider() };

    // ---- UNR0001: make the class partial ----

    [Fact]
    public Task UNR0001_adds_partial_after_the_other_modifiers()
        => AssertFixAsync(new MakePartialCodeFixProvider(), "UNR0001", "Make 'Net' partial",
            Declare("[Network(1, 8, 8)] [Dense(2)]", "public sealed class Net { }"),
            Declare("[Network(1, 8, 8)] [Dense(2)]", "public sealed partial class Net { }"));

    [Fact]
    public Task UNR0001_adds_partial_before_the_keyword_when_there_is_no_modifier()
        => AssertFixAsync(new MakePartialCodeFixProvider(), "UNR0001", "Make 'Net' partial",
            File("[Network(1, 8, 8)]\n[Dense(2)]\n/* the network */ class Net\n{\n}"),
            File("[Network(1, 8, 8)]\n[Dense(2)]\n/* the network */ partial class Net\n{\n}"));

    [Fact]
    public Task UNR0001_makes_every_declaration_of_the_class_partial()
        => AssertFixAsync(new MakePartialCodeFixProvider(), "UNR0001", "Make 'Net' partial",
            new[]
            {
                Declare("[Network(1, 8, 8)] [Dense(2)]", "public class Net { }"),
                File("public class Net\n{\n    public int Extra => 1;\n}"),
            },
            new[]
            {
                Declare("[Network(1, 8, 8)] [Dense(2)]", "public partial class Net { }"),
                File("public partial class Net\n{\n    public int Extra => 1;\n}"),
            });

    [Fact]
    public Task UNR0001_leaves_a_declaration_that_is_already_partial_alone()
        => AssertFixAsync(new MakePartialCodeFixProvider(), "UNR0001", "Make 'Net' partial",
            new[]
            {
                Declare("[Network(1, 8, 8)] [Dense(2)]", "public class Net { }"),
                File("public partial class Net { }"),
            },
            new[]
            {
                Declare("[Network(1, 8, 8)] [Dense(2)]", "public partial class Net { }"),
                File("public partial class Net { }"),
            });

    // ---- UNR0005, UNR0011: use Same padding ----

    [Fact]
    public Task UNR0005_adds_Same_padding_to_a_convolution_larger_than_its_input()
        => AssertFixAsync(new UseSamePaddingCodeFixProvider(), "UNR0005", "Use Padding.Same",
            Declare("[Network(1, 4, 4)] [Conv2D(2, 5, Activation = Activation.ReLU)] [Dense(10)]"),
            Declare("[Network(1, 4, 4)] [Conv2D(2, 5, Activation = Activation.ReLU, Padding = Padding.Same)] [Dense(10)]"));

    [Fact]
    public Task UNR0005_replaces_a_numeric_padding()
        => AssertFixAsync(new UseSamePaddingCodeFixProvider(), "UNR0005", "Use Padding.Same",
            Declare("[Network(1, 4, 4)] [Conv2D(2, 7, Padding = 1, Bias = false)] [Dense(10)]"),
            Declare("[Network(1, 4, 4)] [Conv2D(2, 7, Padding = Padding.Same, Bias = false)] [Dense(10)]"));

    [Theory]
    [InlineData("MaxPool2D")]
    [InlineData("AvgPool2D")]
    public Task UNR0005_adds_Same_padding_to_a_pool_larger_than_its_input(string pool)
        => AssertFixAsync(new UseSamePaddingCodeFixProvider(), "UNR0005", "Use Padding.Same",
            Declare($"[Network(2, 6, 6)] [Conv2D(4, 3)] [{pool}(5)] [Dense(10)]"),
            Declare($"[Network(2, 6, 6)] [Conv2D(4, 3)] [{pool}(5, Padding = Padding.Same)] [Dense(10)]"));

    [Fact]
    public Task UNR0005_qualifies_Same_as_the_file_does_without_a_using()
        => AssertFixAsync(new UseSamePaddingCodeFixProvider(), "UNR0005", "Use Padding.Same",
            "namespace Tests;\n\n[Unrolled.Network(1, 4, 4)] [Unrolled.Conv2D(2, 5)] [Unrolled.Dense(10)]\npublic partial class Net { }\n",
            "namespace Tests;\n\n[Unrolled.Network(1, 4, 4)] [Unrolled.Conv2D(2, 5, Padding = Unrolled.Padding.Same)] [Unrolled.Dense(10)]\npublic partial class Net { }\n");

    [Theory]
    [InlineData("[Network(1, 7, 7)] [MaxPool2D(2)] [Dense(10)]", "[Network(1, 7, 7)] [MaxPool2D(2, Padding = Padding.Same)] [Dense(10)]")]
    [InlineData("[Network(1, 28, 28)] [Conv2D(4, 3, Stride = 2)] [Dense(10)]", "[Network(1, 28, 28)] [Conv2D(4, 3, Stride = 2, Padding = Padding.Same)] [Dense(10)]")]
    [InlineData("[Network(1, 8, 8)] [AvgPool2D(3, Padding = Padding.Valid)] [Dense(10)]", "[Network(1, 8, 8)] [AvgPool2D(3, Padding = Padding.Same)] [Dense(10)]")]
    public Task UNR0011_uses_Same_padding_so_that_the_windows_cover_the_input(string before, string after)
        => AssertFixAsync(new UseSamePaddingCodeFixProvider(), "UNR0011", "Use Padding.Same", Declare(before), Declare(after));

    [Fact]
    public async Task UNR0005_fixing_one_layer_lets_the_next_layer_be_checked_and_fixed()
    {
        // Layers after the first error are not checked; once conv1 fits, conv2 is (and does not fit either).
        Project project = CreateProject(Declare("[Network(1, 4, 4)] [Conv2D(2, 5)] [Conv2D(2, 9)] [Dense(10)]"));
        Solution once = await FixOnlyDiagnosticAsync(project, new UseSamePaddingCodeFixProvider(), "UNR0005");
        Solution twice = await FixOnlyDiagnosticAsync(once.GetProject(project.Id)!, new UseSamePaddingCodeFixProvider(), "UNR0005");
        Assert.Equal(Declare("[Network(1, 4, 4)] [Conv2D(2, 5, Padding = Padding.Same)] [Conv2D(2, 9, Padding = Padding.Same)] [Dense(10)]"),
            await TextAsync(twice.GetProject(project.Id)!.Documents.Single()));
        await AssertCleanAsync(twice.GetProject(project.Id)!);
    }

    // ---- UNR0006: Flatten before Softmax ----

    [Theory]
    [InlineData("[Network(3, 8, 8)] [Conv2D(2, 3)] [Softmax]", "[Network(3, 8, 8)] [Conv2D(2, 3)] [Flatten] [Softmax]")]
    [InlineData("[Network(1, 4, 4)]\n[Conv2D(2, 3)]\n[Softmax]", "[Network(1, 4, 4)]\n[Conv2D(2, 3)]\n[Flatten]\n[Softmax]")]
    [InlineData("[Network(1, 4, 4), Conv2D(2, 3), Softmax]", "[Network(1, 4, 4), Conv2D(2, 3), Flatten, Softmax]")]
    [InlineData("[Network(1, 4, 4)] [Softmax, Dense(2)]", "[Network(1, 4, 4)] [Flatten, Softmax, Dense(2)]")]
    public Task UNR0006_inserts_Flatten_before_a_Softmax_on_an_image(string before, string after)
        => AssertFixAsync(new FlattenBeforeSoftmaxCodeFixProvider(), "UNR0006", "Insert [Flatten] before the Softmax layer",
            Declare(before), Declare(after));

    [Fact]
    public Task UNR0006_lays_out_the_new_attribute_list_as_the_indented_lists_around_it()
        => AssertFixAsync(new FlattenBeforeSoftmaxCodeFixProvider(), "UNR0006", "Insert [Flatten] before the Softmax layer",
            "using Unrolled;\n\nnamespace Tests\n{\n    [Network(1, 4, 4)]\n    // the head\n    [Softmax]\n    public partial class Net { }\n}\n",
            "using Unrolled;\n\nnamespace Tests\n{\n    [Network(1, 4, 4)]\n    // the head\n    [Flatten]\n    [Softmax]\n    public partial class Net { }\n}\n");

    [Fact]
    public Task UNR0006_qualifies_Flatten_as_the_file_does_without_a_using()
        => AssertFixAsync(new FlattenBeforeSoftmaxCodeFixProvider(), "UNR0006", "Insert [Flatten] before the Softmax layer",
            "namespace Tests;\n\n[Unrolled.Network(1, 4, 4)] [Unrolled.Softmax]\npublic partial class Net { }\n",
            "namespace Tests;\n\n[Unrolled.Network(1, 4, 4)] [Unrolled.Flatten] [Unrolled.Softmax]\npublic partial class Net { }\n");

    // ---- Fix All ----

    [Fact]
    public async Task Fix_all_in_a_document_fixes_every_occurrence_at_once()
    {
        Project project = CreateProject(File(
            "[Network(1, 7, 7)] [MaxPool2D(2)] [Dense(10)]\npublic class A { }\n\n" +
            "[Network(1, 9, 9)] [Conv2D(2, 2, Stride = 2)] [MaxPool2D(3)] [Dense(10)]\npublic class B { }"));
        ImmutableArray<Diagnostic> diagnostics = await GeneratorDiagnosticsAsync(project);
        Assert.Equal(new[] { "UNR0001", "UNR0001" }, diagnostics.Select(d => d.Id));

        Solution partial = await FixAllAsync(project, new MakePartialCodeFixProvider(), MakePartialCodeFixProvider.EquivalenceKey);
        project = partial.GetProject(project.Id)!;
        diagnostics = await GeneratorDiagnosticsAsync(project);
        Assert.Equal(new[] { "UNR0011", "UNR0011", "UNR0011" }, diagnostics.Select(d => d.Id));

        Solution same = await FixAllAsync(project, new UseSamePaddingCodeFixProvider(), UseSamePaddingCodeFixProvider.EquivalenceKey);
        project = same.GetProject(project.Id)!;
        Assert.Equal(File(
            "[Network(1, 7, 7)] [MaxPool2D(2, Padding = Padding.Same)] [Dense(10)]\npublic partial class A { }\n\n" +
            "[Network(1, 9, 9)] [Conv2D(2, 2, Stride = 2, Padding = Padding.Same)] [MaxPool2D(3, Padding = Padding.Same)] [Dense(10)]\npublic partial class B { }"),
            await TextAsync(project.Documents.Single()));
        await AssertCleanAsync(project);
    }

    // ---- Where no fix is offered ----

    [Fact]
    public async Task No_padding_fix_for_a_diagnostic_on_a_layer_without_a_window()
    {
        // A stale UNR0005 left on a Dense attribute (say, after the user edited the line) gets no fix.
        Assert.Empty(await FixesForAsync(new UseSamePaddingCodeFixProvider(), Unrolled.Generator.Diagnostics.WindowTooLarge,
            Declare("[Network(1, 4, 4)] [{|Dense(10)|}]")));
        Assert.Single(await FixesForAsync(new UseSamePaddingCodeFixProvider(), Unrolled.Generator.Diagnostics.WindowTooLarge,
            Declare("[Network(1, 4, 4)] [{|Conv2D(2, 5)|}] [Dense(10)]")));
    }

    [Fact]
    public async Task No_padding_fix_for_an_attribute_of_the_same_name_from_another_namespace()
        => Assert.Empty(await FixesForAsync(new UseSamePaddingCodeFixProvider(), Unrolled.Generator.Diagnostics.WindowTooLarge, """
            using Unrolled;

            [Network(1, 4, 4)] [{|Other.Conv2D(2, 5)|}] [Dense(10)]
            public partial class Net { }

            namespace Other
            {
                public sealed class Conv2DAttribute : System.Attribute
                {
                    public Conv2DAttribute(int filters, int kernel) { }
                    public int Padding { get; set; }
                }
            }
            """));

    [Fact]
    public async Task No_flatten_fix_for_a_diagnostic_that_is_not_on_a_Softmax()
    {
        Assert.Empty(await FixesForAsync(new FlattenBeforeSoftmaxCodeFixProvider(), Unrolled.Generator.Diagnostics.SoftmaxOn3D,
            Declare("[Network(1, 4, 4)] [{|Dense(10)|}] [Softmax]")));
        Assert.Single(await FixesForAsync(new FlattenBeforeSoftmaxCodeFixProvider(), Unrolled.Generator.Diagnostics.SoftmaxOn3D,
            Declare("[Network(1, 4, 4)] [Dense(10)] [{|Softmax|}]")));
    }

    [Fact]
    public async Task No_partial_fix_for_a_diagnostic_that_is_not_on_a_class_name()
    {
        Assert.Empty(await FixesForAsync(new MakePartialCodeFixProvider(), Unrolled.Generator.Diagnostics.NotPartial,
            Declare("[{|Network(1, 8, 8)|}] [Dense(2)]", "public class Net { }")));
        Assert.Single(await FixesForAsync(new MakePartialCodeFixProvider(), Unrolled.Generator.Diagnostics.NotPartial,
            Declare("[Network(1, 8, 8)] [Dense(2)]", "public class {|Net|} { }")));
    }

    // ---- The workspace ----

    /// <summary>A project of C# documents Source0.cs, Source1.cs, … with the generator tests' references and options.</summary>
    private Project CreateProject(params string[] sources)
    {
        ProjectId id = ProjectId.CreateNewId();
        Solution solution = _workspace.CurrentSolution.AddProject(ProjectInfo.Create(id, VersionStamp.Default, "Tests", "Tests", LanguageNames.CSharp,
            compilationOptions: GeneratorHarness.CompilationOptions, parseOptions: GeneratorHarness.ParseOptions,
            metadataReferences: GeneratorHarness.References.Value));
        for (int i = 0; i < sources.Length; i++)
        {
            string path = GeneratorHarness.PathOf(i);
            solution = solution.AddDocument(DocumentId.CreateNewId(id, path), path, SourceText.From(sources[i], Encoding.UTF8), filePath: path);
        }
        return solution.GetProject(id)!;
    }

    /// <summary>What the generator reports on the project (its diagnostics are located in the project's documents).</summary>
    private static async Task<ImmutableArray<Diagnostic>> GeneratorDiagnosticsAsync(Project project)
        => (await GenerateAsync(project)).Diagnostics;

    private static async Task<(ImmutableArray<Diagnostic> Diagnostics, Compilation Output)> GenerateAsync(Project project)
    {
        Compilation compilation = (await project.GetCompilationAsync())!;
        GeneratorHarness.CreateDriver().RunGeneratorsAndUpdateCompilation(compilation, out Compilation output, out ImmutableArray<Diagnostic> diagnostics);
        return (diagnostics, output);
    }

    /// <summary>The fixes <paramref name="provider"/> registers for one diagnostic.</summary>
    private static async Task<ImmutableArray<CodeAction>> FixesAsync(CodeFixProvider provider, Document document, Diagnostic diagnostic)
    {
        var actions = ImmutableArray.CreateBuilder<CodeAction>();
        await provider.RegisterCodeFixesAsync(new CodeFixContext(document, diagnostic, (action, _) => actions.Add(action), CancellationToken.None));
        return actions.ToImmutable();
    }

    /// <summary>The fixes for a diagnostic placed by hand on the span marked <c>{|…|}</c> in the source.</summary>
    private async Task<ImmutableArray<CodeAction>> FixesForAsync(CodeFixProvider provider, DiagnosticDescriptor descriptor, string markup)
    {
        MarkedSource source = MarkedSource.Parse(markup, GeneratorHarness.PathOf(0));
        Document document = CreateProject(source.Text).Documents.Single();
        SyntaxTree tree = (await document.GetSyntaxTreeAsync())!;
        Diagnostic diagnostic = Diagnostic.Create(descriptor, Location.Create(tree, Assert.Single(source.Spans)), "Net", "", "", "", "", "");
        return await FixesAsync(provider, document, diagnostic);
    }

    /// <summary>The solution after the action's single change.</summary>
    private static async Task<Solution> ApplyAsync(CodeAction action)
    {
        ImmutableArray<CodeActionOperation> operations = await action.GetOperationsAsync(CancellationToken.None);
        return Assert.IsType<ApplyChangesOperation>(Assert.Single(operations)).ChangedSolution;
    }

    /// <summary>The project has exactly one generator diagnostic, with <paramref name="id"/>; applies the provider's only fix for it.</summary>
    private static async Task<Solution> FixOnlyDiagnosticAsync(Project project, CodeFixProvider provider, string id, string? title = null)
    {
        ImmutableArray<Diagnostic> diagnostics = await GeneratorDiagnosticsAsync(project);
        Diagnostic diagnostic = Assert.Single(diagnostics);
        Assert.Equal(id, diagnostic.Id);
        Document document = Assert.IsAssignableFrom<Document>(project.GetDocument(diagnostic.Location.SourceTree));
        CodeAction action = Assert.Single(await FixesAsync(provider, document, diagnostic));
        if (title is not null) Assert.Equal(title, action.Title);
        return await ApplyAsync(action);
    }

    /// <summary>Fix All in the first document, through the provider's own Fix All provider and the given equivalence key.</summary>
    private static async Task<Solution> FixAllAsync(Project project, CodeFixProvider provider, string equivalenceKey)
    {
        var context = new FixAllContext(project.Documents.First(), provider, FixAllScope.Document, equivalenceKey,
            provider.FixableDiagnosticIds, new GeneratorDiagnosticProvider(provider.FixableDiagnosticIds), CancellationToken.None);
        CodeAction action = Assert.IsAssignableFrom<CodeAction>(await provider.GetFixAllProvider()!.GetFixAsync(context));
        return await ApplyAsync(action);
    }

    /// <summary>Applies the single fix and checks every document's text, then that the project is clean.</summary>
    private async Task AssertFixAsync(CodeFixProvider provider, string id, string title, string[] sources, string[] expected)
    {
        Project project = CreateProject(sources);
        Solution fixedSolution = await FixOnlyDiagnosticAsync(project, provider, id, title);
        Project fixedProject = fixedSolution.GetProject(project.Id)!;
        string[] texts = await Task.WhenAll(fixedProject.Documents.OrderBy(d => d.FilePath, StringComparer.Ordinal).Select(TextAsync));
        Assert.Equal(expected, texts);
        await AssertCleanAsync(fixedProject);
    }

    private Task AssertFixAsync(CodeFixProvider provider, string id, string title, string source, string expected)
        => AssertFixAsync(provider, id, title, new[] { source }, new[] { expected });

    /// <summary>The generator reports nothing, generates every network, and the whole project compiles without warnings.</summary>
    private static async Task AssertCleanAsync(Project project)
    {
        (ImmutableArray<Diagnostic> diagnostics, Compilation output) = await GenerateAsync(project);
        Assert.True(diagnostics.IsEmpty, "The generator still reports:\n" + GeneratorOutput.Describe(diagnostics));
        var problems = output.GetDiagnostics().Where(d => d.Severity >= DiagnosticSeverity.Warning).ToList();
        Assert.True(problems.Count == 0, "The fixed project does not compile cleanly:\n" + GeneratorOutput.Describe(problems));
        Assert.True(output.SyntaxTrees.Count() > project.Documents.Count(), "Nothing was generated");
    }

    private static async Task<string> TextAsync(Document document) => (await document.GetTextAsync()).ToString();

    /// <summary>Hands Fix All the generator's diagnostics, as the IDE hands it the ones it has.</summary>
    private sealed class GeneratorDiagnosticProvider : FixAllContext.DiagnosticProvider
    {
        private readonly ImmutableArray<string> _ids;

        public GeneratorDiagnosticProvider(ImmutableArray<string> ids) => _ids = ids;

        public override async Task<IEnumerable<Diagnostic>> GetDocumentDiagnosticsAsync(Document document, CancellationToken cancellationToken)
        {
            SyntaxTree? tree = await document.GetSyntaxTreeAsync(cancellationToken);
            return (await GetAllDiagnosticsAsync(document.Project, cancellationToken)).Where(d => d.Location.SourceTree == tree);
        }

        public override Task<IEnumerable<Diagnostic>> GetProjectDiagnosticsAsync(Project project, CancellationToken cancellationToken)
            => Task.FromResult(Enumerable.Empty<Diagnostic>());

        public override async Task<IEnumerable<Diagnostic>> GetAllDiagnosticsAsync(Project project, CancellationToken cancellationToken)
            => (await GeneratorDiagnosticsAsync(project)).Where(d => _ids.Contains(d.Id));
    }
}

using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Text;
using Xunit;

namespace Unrolled.Tests.Generator;

/// <summary>
/// Every diagnostic of the generator and its analyzer: the ID, the severity, the attribute (or class) it is
/// reported on, the exact message with its numbers, and that an erroneous network generates nothing and
/// leaves no compiler errors behind. Sources mark where a diagnostic belongs with <c>{|…|}</c>.
/// </summary>
public class DiagnosticTests
{
    /// <summary>A file declaring one network class <c>Net</c> with the given attributes.</summary>
    internal static string Declare(string attributes, string type = "public partial class Net { }")
        => $"using Unrolled;\n\nnamespace Tests;\n\n{attributes}\n{type}\n";

    /// <summary>A file with arbitrary declarations after the usual usings and namespace.</summary>
    internal static string File(string declarations) => $"using Unrolled;\n\nnamespace Tests;\n\n{declarations}\n";

    /// <summary>
    /// Asserts that the generator and analyzer report exactly <paramref name="messages"/> (in source order),
    /// all with <paramref name="id"/> and <paramref name="severity"/>, each on one of the marked spans and
    /// every marked span carrying at least one of them. For errors, also that nothing was generated and the
    /// compilation has no errors; for warnings, that the network was generated and compiles cleanly.
    /// </summary>
    private static GeneratorOutput AssertReports(string source, string id, DiagnosticSeverity severity, params string[] messages)
    {
        GeneratorOutput run = GeneratorHarness.Run(source);
        IReadOnlyList<Diagnostic> reported = run.ProjectDiagnostics;
        string listing = GeneratorOutput.Describe(reported);

        Assert.True(reported.All(d => d.Id == id), $"Expected only {id}, got:\n{listing}");
        Assert.True(reported.All(d => d.Severity == severity && d.Descriptor.DefaultSeverity == severity),
            $"Expected severity {severity}, got:\n{listing}");
        Assert.Equal(messages, reported.Select(d => d.GetMessage(CultureInfo.InvariantCulture)));

        MarkedSource file = run.Sources[0];
        Assert.NotEmpty(file.Spans);
        foreach (Diagnostic d in reported)
        {
            Assert.Equal(file.Path, d.Location.GetLineSpan().Path);
            Assert.True(file.Spans.Contains(d.Location.SourceSpan),
                $"{d.Id} is on '{file.TextOf(d.Location.SourceSpan)}' but should be on " +
                string.Join(" or ", file.Spans.Select(s => $"'{file.TextOf(s)}'")));
        }
        foreach (TextSpan span in file.Spans)
            Assert.True(reported.Any(d => d.Location.SourceSpan == span), $"Nothing was reported on '{file.TextOf(span)}':\n{listing}");

        if (severity == DiagnosticSeverity.Error)
        {
            Assert.Empty(run.GeneratedSources);
        }
        else
        {
            Assert.Single(run.GeneratedSources);
            Assert.Empty(run.GeneratedCodeProblems);
        }
        Assert.True(!run.CompilationErrors.Any(), "Compiler errors:\n" + GeneratorOutput.Describe(run.CompilationErrors));
        return run;
    }

    private static void AssertError(string source, string id, params string[] messages)
        => AssertReports(source, id, DiagnosticSeverity.Error, messages);

    // ---- UNR0001, UNR0002: the class and its layers ----

    [Fact]
    public void UNR0001_a_network_class_that_is_not_partial()
        => AssertError(Declare("[Network(1, 8, 8)] [Dense(2)]", "public class {|Net|} { }"), "UNR0001",
            "The network class 'Net' must be declared partial so that the generator can add its members");

    [Fact]
    public void UNR0002_a_network_without_layers()
        => AssertError(Declare("[{|Network(1, 28, 28)|}]"), "UNR0002",
            "The network 'Net' declares no layers");

    // ---- UNR0003: sizes that must be positive ----

    [Theory]
    [InlineData("[{|Network(0, 28, 28)|}] [Dense(10)]", "Network: the input channel count must be positive but is 0")]
    [InlineData("[{|Network(1, -28, 28)|}] [Dense(10)]", "Network: the input height must be positive but is -28")]
    [InlineData("[{|Network(1, 28, 0)|}] [Dense(10)]", "Network: the input width must be positive but is 0")]
    [InlineData("[{|Network(-5)|}] [Dense(10)]", "Network: the input feature count must be positive but is -5")]
    [InlineData("[Network(1, 28, 28)] [{|Conv2D(0, 3)|}] [Dense(10)]", "conv1: the filter count must be positive but is 0")]
    [InlineData("[Network(1, 28, 28)] [{|Conv2D(4, -3, 3)|}] [Dense(10)]", "conv1: the kernel height must be positive but is -3")]
    [InlineData("[Network(1, 28, 28)] [{|Conv2D(4, 3, 0)|}] [Dense(10)]", "conv1: the kernel width must be positive but is 0")]
    [InlineData("[Network(1, 28, 28)] [{|Conv2D(4, 3, Stride = 0)|}] [Dense(10)]", "conv1: the stride must be positive but is 0")]
    [InlineData("[Network(1, 28, 28)] [Dense(5)] [{|Dense(0)|}]", "dense2: the unit count must be positive but is 0")]
    [InlineData("[Network(1, 28, 28)] [{|MaxPool2D(2, Stride = -1)|}] [Dense(10)]", "maxpool1: the stride must be positive but is -1")]
    [InlineData("[Network(1, 28, 28)] [{|AvgPool2D(3, Stride = 0)|}] [Dense(10)]", "avgpool1: the stride must be positive but is 0")]
    [InlineData("[Network(3, 8, 8)] [{|LocalResponseNorm(0)|}] [Dense(2)]", "lrn1: the size must be positive but is 0")]
    public void UNR0003_a_size_that_is_not_positive(string attributes, string message)
        => AssertError(Declare(attributes), "UNR0003", message);

    [Fact]
    public void UNR0003_every_bad_input_dimension_is_reported()
        => AssertError(Declare("[{|Network(0, 8, -1)|}] [Dense(2)]"), "UNR0003",
            "Network: the input channel count must be positive but is 0",
            "Network: the input width must be positive but is -1");

    [Fact]
    public void UNR0003_a_zero_square_kernel_names_both_dimensions()
        => AssertError(Declare("[Network(1, 28, 28)] [{|Conv2D(4, 0)|}] [Dense(10)]"), "UNR0003",
            "conv1: the kernel height must be positive but is 0",
            "conv1: the kernel width must be positive but is 0");

    [Fact]
    public void UNR0003_a_zero_pool_size_is_an_error_on_the_pool()
    {
        // Lenient on the count: see the skipped test below for the exact wording.
        GeneratorOutput run = GeneratorHarness.Run(Declare("[Network(1, 28, 28)] [{|MaxPool2D(0)|}] [Dense(10)]"));
        Assert.NotEmpty(run.ProjectDiagnostics);
        Assert.All(run.ProjectDiagnostics, d =>
        {
            Assert.Equal("UNR0003", d.Id);
            Assert.Equal(DiagnosticSeverity.Error, d.Severity);
            Assert.Equal(run.Sources[0].Spans[0], d.Location.SourceSpan);
        });
        Assert.Contains("maxpool1: the window size must be positive but is 0", run.ProjectDiagnostics.Select(d => d.GetMessage()));
        Assert.Empty(run.GeneratedSources);
    }

    [Fact]
    public void UNR0003_a_zero_pool_size_is_reported_once()
        => AssertError(Declare("[Network(1, 28, 28)] [{|MaxPool2D(0)|}] [Dense(10)]"), "UNR0003",
            "maxpool1: the window size must be positive but is 0");

    // ---- UNR0004: pooling padding ----

    [Theory]
    [InlineData("[Network(3, 8, 8)] [{|MaxPool2D(2, Padding = 2)|}] [Dense(2)]", "maxpool1: padding 2 is larger than half the 2×2 window")]
    [InlineData("[Network(3, 8, 8)] [{|AvgPool2D(3, Padding = 2)|}] [Dense(2)]", "avgpool1: padding 2 is larger than half the 3×3 window")]
    [InlineData("[Network(3, 8, 8)] [MaxPool2D(2)] [{|MaxPool2D(1, Padding = 1)|}] [Dense(2)]", "maxpool2: padding 1 is larger than half the 1×1 window")]
    public void UNR0004_pool_padding_larger_than_half_the_window(string attributes, string message)
        => AssertError(Declare(attributes), "UNR0004", message);

    // ---- UNR0005: windows larger than their (padded) input, naming the producer ----

    [Theory]
    [InlineData("[Network(1, 28, 28)] [Conv2D(6, 5)] [MaxPool2D(2)] [Conv2D(16, 5)] [MaxPool2D(2)] [{|Conv2D(32, 5)|}] [Dense(10)]",
        "conv3 needs at least 5×5 but receives 4×4 from maxpool2")]
    [InlineData("[Network(1, 4, 4)] [{|Conv2D(2, 5)|}] [Dense(10)]", "conv1 needs at least 5×5 but receives 4×4 from the input")]
    [InlineData("[Network(1, 4, 4)] [{|Conv2D(2, 7, Padding = 1)|}] [Dense(10)]", "conv1 needs at least 7×7 but receives 6×6 from the input (padded by 1)")]
    [InlineData("[Network(1, 8, 4)] [{|Conv2D(2, 3, 5)|}] [Dense(10)]", "conv1 needs at least 3×5 but receives 8×4 from the input")]
    [InlineData("[Network(1, 1, 1)] [{|MaxPool2D(2)|}] [Dense(10)]", "maxpool1 needs at least 2×2 but receives 1×1 from the input")]
    [InlineData("[Network(2, 6, 6)] [Conv2D(4, 3, Name = \"stem\")] [{|AvgPool2D(5)|}] [Dense(10)]", "avgpool1 needs at least 5×5 but receives 4×4 from stem")]
    public void UNR0005_a_window_larger_than_its_input(string attributes, string message)
        => AssertError(Declare(attributes), "UNR0005", message);

    // ---- UNR0006: Softmax on an image ----

    [Theory]
    [InlineData("[Network(3, 8, 8)] [Conv2D(2, 3)] [{|Softmax|}]", "softmax1: Softmax needs a 1-D input but receives 2×6×6 from conv1; add [Flatten] or [Dense] before it")]
    [InlineData("[Network(1, 4, 4)] [{|Softmax|}]", "softmax1: Softmax needs a 1-D input but receives 1×4×4 from the input; add [Flatten] or [Dense] before it")]
    public void UNR0006_softmax_on_a_3D_shape(string attributes, string message)
        => AssertError(Declare(attributes), "UNR0006", message);

    // ---- UNR0007: dropout probability ----

    [Theory]
    [InlineData("[{|Dropout(1)|}]", "dropout1: dropout probability must be in [0, 1) but is 1")]
    [InlineData("[{|Dropout(-0.1)|}]", "dropout1: dropout probability must be in [0, 1) but is -0.1")]
    [InlineData("[{|Dropout(1.5)|}]", "dropout1: dropout probability must be in [0, 1) but is 1.5")]
    [InlineData("[{|Dropout(double.NaN)|}]", "dropout1: dropout probability must be in [0, 1) but is NaN")]
    public void UNR0007_dropout_probability_out_of_range(string dropout, string message)
        => AssertError(Declare($"[Network(3, 8, 8)] {dropout} [Dense(2)]"), "UNR0007", message);

    // ---- UNR0008: the loss and the output ----

    [Theory]
    [InlineData("[{|Network(3, 8, 8)|}] [Conv2D(2, 3)]",
        "The loss CrossEntropy does not fit the network's output 2×6×6: cross-entropy needs a 1-D output of class scores, but conv1 produces an image; add [Flatten] or [Dense(classes)]")]
    [InlineData("[{|Network(3, 8, 8, Loss = Loss.CrossEntropy)|}] [MaxPool2D(2)]",
        "The loss CrossEntropy does not fit the network's output 3×4×4: cross-entropy needs a 1-D output of class scores, but maxpool1 produces an image; add [Flatten] or [Dense(classes)]")]
    [InlineData("[{|Network(3, 8, 8)|}] [Dense(1)]",
        "The loss CrossEntropy does not fit the network's output 1: cross-entropy needs at least two classes")]
    [InlineData("[{|Network(3, 8, 8)|}] [Dense(1)] [Softmax]",
        "The loss CrossEntropy does not fit the network's output 1: cross-entropy needs at least two classes")]
    public void UNR0008_cross_entropy_on_an_output_it_does_not_fit(string attributes, string message)
        => AssertError(Declare(attributes), "UNR0008", message);

    // ---- UNR0009: layers without [Network] (the analyzer) ----

    [Fact]
    public void UNR0009_layer_attributes_without_Network_are_reported_by_the_analyzer()
    {
        GeneratorOutput run = AssertReports(Declare("[{|Conv2D(2, 3)|}] [Dense(2)]"), "UNR0009", DiagnosticSeverity.Error,
            "The class 'Net' has layer attributes but no [Network(…)] attribute, so no network is generated");
        Assert.Empty(run.GeneratorDiagnostics);
        Assert.Single(run.AnalyzerDiagnostics);
    }

    [Fact]
    public void UNR0009_is_reported_on_the_first_layer_only_even_when_it_is_not_first_in_the_list()
        => AssertError(File("[System.Serializable] [{|MaxPool2D(2)|}] [Dense(2)]\npublic class Net { }"), "UNR0009",
            "The class 'Net' has layer attributes but no [Network(…)] attribute, so no network is generated");

    [Fact]
    public void UNR0009_is_not_reported_when_Network_is_on_another_part_of_the_class()
    {
        GeneratorOutput run = GeneratorHarness.Run(
            File("[Dense(2)]\npublic partial class Net { }"),
            File("[Network(4)]\npublic partial class Net { }"));
        Assert.Empty(run.AnalyzerDiagnostics);
    }

    [Fact]
    public void UNR0009_is_not_reported_for_classes_without_layer_attributes()
    {
        GeneratorOutput run = GeneratorHarness.Run(File("[System.Obsolete] public class Plain { }\npublic class Other { }"));
        Assert.Empty(run.ProjectDiagnostics);
    }

    // ---- UNR0010: duplicate names ----

    [Theory]
    [InlineData("[Dense(4, Name = \"dense2\")] [{|Dense(2)|}]", "dense2")]
    [InlineData("[Dense(4)] [{|Dense(2, Name = \"dense1\")|}]", "dense1")]
    [InlineData("[Dense(4, Name = \"hidden\")] [{|Dense(2, Name = \"hidden\")|}]", "hidden")]
    [InlineData("[Conv2D(4, 3, Name = \"dense1\")] [{|Dense(2)|}]", "dense1")]
    public void UNR0010_a_name_used_twice_is_reported_on_the_second_use(string layers, string name)
        => AssertError(Declare($"[Network(3, 8, 8)] {layers}"), "UNR0010",
            $"The layer name '{name}' is used by more than one layer");

    // ---- UNR0011: a stride that leaves input unread (a warning; the network is still generated) ----

    [Theory]
    [InlineData("[Network(1, 7, 7)] [{|MaxPool2D(2)|}] [Dense(10)]",
        "maxpool1: with a 2×2 window and stride 2, the last 1 row(s) and 1 column(s) of the 7×7 padded input are never read")]
    [InlineData("[Network(2, 3, 3)] [{|Conv2D(4, 5, Padding = 2, Stride = 4)|}] [Dense(2)]",
        "conv1: with a 5×5 window and stride 4, the last 2 row(s) and 2 column(s) of the 7×7 padded input are never read")]
    [InlineData("[Network(1, 9, 8)] [{|AvgPool2D(3, Stride = 2)|}] [Dense(2)]",
        "avgpool1: with a 3×3 window and stride 2, the last 0 row(s) and 1 column(s) of the 9×8 padded input are never read")]
    public void UNR0011_a_stride_that_drops_rows_is_a_warning_and_the_network_is_generated(string attributes, string message)
    {
        GeneratorOutput run = AssertReports(Declare(attributes), "UNR0011", DiagnosticSeverity.Warning, message);
        Assert.Equal("Tests.Net.g.cs", run.GeneratedSources[0].HintName);
        Assert.True(!run.CompilationWarningsAndErrors.Any(), GeneratorOutput.Describe(run.CompilationWarningsAndErrors));
    }

    [Fact]
    public void UNR0011_can_be_suppressed_with_a_pragma()
    {
        GeneratorOutput run = GeneratorHarness.Run(File(
            "#pragma warning disable UNR0011\n[Network(1, 7, 7)] [MaxPool2D(2)] [Dense(10)]\npublic partial class Net { }\n#pragma warning restore UNR0011"));
        Assert.True(!run.ProjectDiagnostics.Any(d => !d.IsSuppressed), GeneratorOutput.Describe(run.ProjectDiagnostics));
        Assert.Single(run.GeneratedSources);
    }

    [Fact]
    public void UNR0011_follows_the_configured_severity()
    {
        var options = GeneratorHarness.CompilationOptions.WithSpecificDiagnosticOptions(
            new Dictionary<string, ReportDiagnostic> { ["UNR0011"] = ReportDiagnostic.Error });
        GeneratorOutput run = GeneratorHarness.Run(options, Declare("[Network(1, 7, 7)] [MaxPool2D(2)] [Dense(10)]"));
        Assert.Equal(DiagnosticSeverity.Error, Assert.Single(run.ProjectDiagnostics).Severity);

        options = GeneratorHarness.CompilationOptions.WithSpecificDiagnosticOptions(
            new Dictionary<string, ReportDiagnostic> { ["UNR0011"] = ReportDiagnostic.Suppress });
        run = GeneratorHarness.Run(options, Declare("[Network(1, 7, 7)] [MaxPool2D(2)] [Dense(10)]"));
        Assert.Empty(run.ProjectDiagnostics);
        Assert.Single(run.GeneratedSources);
    }

    // ---- UNR0012: negative padding ----

    [Theory]
    [InlineData("[{|Conv2D(2, 3, Padding = -1)|}]", "conv1: padding must be zero or more (or Padding.Same) but is -1")]
    [InlineData("[{|MaxPool2D(2, Padding = -1)|}]", "maxpool1: padding must be zero or more (or Padding.Same) but is -1")]
    [InlineData("[{|AvgPool2D(3, Padding = -2)|}]", "avgpool1: padding must be zero or more (or Padding.Same) but is -2")]
    [InlineData("[{|Conv2D(2, 3, Padding = int.MinValue + 1)|}]", "conv1: padding must be zero or more (or Padding.Same) but is -2147483647")]
    public void UNR0012_negative_padding(string layer, string message)
        => AssertError(Declare($"[Network(3, 8, 8)] {layer} [Dense(2)]"), "UNR0012", message);

    // ---- UNR0013: classes the generator cannot extend ----

    [Theory]
    [InlineData("public partial class Outer\n{\n    [Network(3, 8, 8)] [Dense(2)]\n    public partial class {|Net|} { }\n}",
        "The network class 'Net' is nested in another type; declare it at namespace level")]
    [InlineData("[Network(3, 8, 8)] [Dense(2)]\npublic partial class {|Net|}<T> { }",
        "The network class 'Net' is generic; networks cannot have type parameters")]
    [InlineData("public class Base { }\n\n[Network(3, 8, 8)] [Dense(2)]\npublic partial class {|Net|} : Base { }",
        "The network class 'Net' derives from 'Base'; a network cannot declare a base class")]
    [InlineData("[Network(3, 8, 8)] [Dense(2)]\npublic static partial class {|Net|} { }",
        "The network class 'Net' is static")]
    [InlineData("[Network(3, 8, 8)] [Dense(2)]\nfile partial class {|Net|} { }",
        "The network class 'Net' is file-local; the generated part, in another file, would be another class")]
    [InlineData("[Network(3, 8, 8)] [Dense(2)]\npublic partial class {|Net|}(int width) { }",
        "The network class 'Net' has a primary constructor; the generated constructor (int seed = 0) cannot chain to it")]
    [InlineData("[Network(3, 8, 8)] [Dense(2)]\npublic partial class {|Forward|} { }",
        "The network class 'Forward' has the name of the member 'Forward' that every network has; rename the class")]
    // Private members of the generated code too (CS0542 otherwise), the layer kernels' among them.
    [InlineData("[Network(3, 8, 8)] [Dense(2)]\npublic partial class {|Run|} { }",
        "The network class 'Run' has the name of the private member 'Run' that the generated code declares; rename the class")]
    [InlineData("[Network(3, 8, 8)] [Dense(2)]\npublic partial class {|_parameters|} { }",
        "The network class '_parameters' has the name of the private member '_parameters' that the generated code declares; rename the class")]
    [InlineData("[Network(3, 8, 8)] [Dense(2)]\npublic partial class {|L0_Forward|} { }",
        "The network class 'L0_Forward' has the name of the private member 'L0_Forward' that the generated code declares; rename the class")]
    [InlineData("[Network(3, 8, 8)] [Dense(2)]\npublic partial class {|L100000_InputGradient_Convolve|} { }",
        "The network class 'L100000_InputGradient_Convolve' has the name of the private member 'L100000_InputGradient_Convolve' that the generated code declares; rename the class")]
    public void UNR0013_unsupported_network_classes(string declarations, string message)
        => AssertError(File(declarations), "UNR0013", message);

    [Fact]
    public void UNR0013_a_record_network_is_reported()
    {
        GeneratorOutput run = GeneratorHarness.Run(File("[Network(3, 8, 8)] [Dense(2)]\npublic partial record {|Net|} { }"));
        Assert.True(run.GeneratedSources.Count == 1 || run.ProjectDiagnostics.Any(d => d.Id == "UNR0013"),
            "A record network is neither generated nor reported");
    }

    // ---- UNR0014: invalid names ----

    [Theory]
    [InlineData("a.b", "it contains '.'")]
    [InlineData("", "it is empty")]
    [InlineData("a b", "it contains whitespace")]
    [InlineData("a\tb", "it contains whitespace")]
    [InlineData("a\u0001b", "it contains control characters")]
    public void UNR0014_invalid_layer_names(string name, string problem)
    {
        string literal = name.Replace("\t", "\\t").Replace("\u0001", "\\u0001");
        AssertError(Declare($"[Network(3, 8, 8)] [{{|Dense(2, Name = \"{literal}\")|}}]"), "UNR0014",
            $"The layer name '{name}' is not valid: {problem}");
    }

    // ---- UNR0015: options outside what a layer supports ----

    [Theory]
    [InlineData("[Network(3, 8, 8)] [Dense(4)] [{|Conv2D(2, 3)|}]",
        "conv1: Conv2D needs an image (C×H×W) input but receives the 1-D shape 4 from dense1")]
    [InlineData("[Network(20)] [{|MaxPool2D(2)|}] [Dense(2)]",
        "maxpool1: MaxPool2D needs an image (C×H×W) input but receives the 1-D shape 20 from the input")]
    [InlineData("[Network(3, 8, 8)] [GlobalAvgPool2D] [{|AvgPool2D(2)|}] [Dense(2)]",
        "avgpool1: AvgPool2D needs an image (C×H×W) input but receives the 1-D shape 3 from gap1")]
    [InlineData("[Network(20)] [{|GlobalAvgPool2D|}] [Dense(2)]",
        "gap1: GlobalAvgPool2D needs an image (C×H×W) input but receives the 1-D shape 20 from the input")]
    [InlineData("[{|Network(3, 8, 8, Loss = (Loss)5)|}] [Dense(2)]", "Network: unknown loss value 5")]
    [InlineData("[Network(3, 8, 8)] [{|Dense(2, Activation = (Activation)9)|}]", "dense1: unknown activation value 9")]
    [InlineData("[Network(3, 8, 8)] [{|LeakyReLU(double.NaN)|}] [Dense(2)]", "leakyrelu1: the slope must be finite but is NaN")]
    [InlineData("[Network(3, 8, 8)] [{|LocalResponseNorm(3, K = 0)|}] [Dense(2)]",
        "lrn1: K must be positive and Alpha non-negative and finite (K = 0, Alpha = 0.0001, Beta = 0.75)")]
    [InlineData("[Network(3, 8, 8)] [{|LocalResponseNorm(3, K = 1e-300)|}] [Dense(2)]",
        "lrn1: K must be positive and Alpha non-negative and finite (K = 1E-300, Alpha = 0.0001, Beta = 0.75); in float32, which the network computes in, they are K = 0, Alpha = 0.0001, Beta = 0.75")]
    [InlineData("[Network(3, 8, 8)] [{|LeakyReLU(1e300)|}] [Dense(2)]",
        "leakyrelu1: the slope must be finite but is 1E+300; in float32, which the network computes in, it is Infinity")]
    [InlineData("[Network(20)] [{|LocalResponseNorm(3)|}] [Dense(2)]",
        "lrn1: LocalResponseNorm needs an image (C×H×W) input but receives the 1-D shape 20 from the input")]
    public void UNR0015_invalid_layer_options(string attributes, string message)
        => AssertError(Declare(attributes), "UNR0015", message);

    [Fact]
    public void UNR0015_messages_do_not_depend_on_the_current_culture()
    {
        CultureInfo saved = CultureInfo.CurrentCulture;
        CultureInfo.CurrentCulture = CultureInfo.GetCultureInfo("de-DE");
        try
        {
            AssertError(Declare("[Network(3, 8, 8)] [{|LocalResponseNorm(3, K = 0)|}] [Dense(2)]"), "UNR0015",
                "lrn1: K must be positive and Alpha non-negative and finite (K = 0, Alpha = 0.0001, Beta = 0.75)");
        }
        finally
        {
            CultureInfo.CurrentCulture = saved;
        }
    }

    // ---- UNR0016: too large ----

    [Theory]
    [InlineData("[{|Network(1, 20000, 20000)|}] [Dense(2)]",
        "The network 'Net' is too large: the input has 400000000 values per sample; at most 268435456 are supported")]
    [InlineData("[Network(1, 1000, 1000)] [{|Conv2D(300, 1)|}] [Dense(2)]",
        "The network 'Net' is too large: conv1: the output would be 300×1000×1000, more values than supported (268435456)")]
    [InlineData("[Network(1, 100, 100)] [{|Dense(30000)|}]",
        "The network 'Net' is too large: dense1: 30000 units × 10000 inputs would bring the parameter count to 300030000, more than supported (268435456)")]
    // The generated code's own buffers: a convolution's padded, stride-phase input (here a padding of 99996 with a
    // stride of 100000: 100000 phases of 200001 rows of 16 floats), an output computed 16 floats a row (a 16×2^24×1
    // output takes 2^32 floats so), and the layer outputs training keeps per sample (eight of 2^28 floats).
    [InlineData("[Network(1, 9, 9, Loss = Loss.MeanSquaredError)] [{|Conv2D(1, 1, Stride = 100000, Padding = 99996)|}]",
        "The network 'Net' is too large: conv1: the layers up to conv1 need a workspace of 640003200672 floats per thread (the largest convolution buffer, a padded input split into stride phases or an output with rows padded to 16 floats, takes 320001600000 floats); one .NET array holds at most 2147483575 floats")]
    [InlineData("[Network(1, 16777216, 1, Loss = Loss.MeanSquaredError)] [{|Conv2D(16, 1)|}]",
        "The network 'Net' is too large: conv1: the layers up to conv1 need a workspace of 9932112160 floats per thread (the largest convolution buffer, a padded input split into stride phases or an output with rows padded to 16 floats, takes 4294967296 floats); one .NET array holds at most 2147483575 floats")]
    [InlineData("[Network(1, 16384, 16384, Loss = Loss.MeanSquaredError)] [ReLU] [ReLU] [ReLU] [ReLU] [ReLU] [ReLU] [ReLU] [{|ReLU|}] [ReLU]",
        "The network 'Net' is too large: relu8: training would keep 2147483648 floats of layer outputs per sample (each rounded up to 16 floats); one .NET array holds at most 2147483575 floats")]
    public void UNR0016_networks_too_large(string attributes, string message)
        => AssertError(Declare(attributes), "UNR0016", message);

    [Fact]
    public void UNR0016_a_parameter_count_beyond_int_is_too_large()
    {
        GeneratorOutput run = GeneratorHarness.Run(Declare("[Network(30000, 1, 1)] [{|Conv2D(100000, 1)|}] [Dense(2)]"));
        Assert.Contains(run.ProjectDiagnostics, d => d.Id == "UNR0016");
        Assert.Empty(run.GeneratedSources);
        Assert.Empty(run.CompilationErrors);
    }

    [Fact]
    public void UNR0016_an_output_height_beyond_int_is_too_large()
    {
        GeneratorOutput run = GeneratorHarness.Run(Declare("[Network(1, 1, 1)] [{|Conv2D(1, 1, Padding = int.MaxValue)|}] [Dense(2)]"));
        Assert.Contains(run.ProjectDiagnostics, d => d.Id is "UNR0016" or "UNR0015");
        Assert.Empty(run.GeneratedSources);
    }

    [Fact]
    public void Same_padding_with_a_huge_stride_gives_a_one_by_one_output()
    {
        GeneratorOutput run = GeneratorHarness.Run(Declare("[Network(1, 2, 2)] [Conv2D(1, 1, Stride = int.MaxValue, Padding = Padding.Same)] [Dense(2)]"));
        Assert.Empty(run.ProjectDiagnostics);
        string source = Assert.Single(run.GeneratedSources).Text;
        Assert.DoesNotContain("×-1", source);
        Assert.Contains("1×1×1", source);
    }

    // ---- UNR0018: a compilation without optimization (Info; the network is still generated) ----

    private static readonly CSharpCompilationOptions Debug = GeneratorHarness.CompilationOptions.WithOptimizationLevel(OptimizationLevel.Debug);

    private static readonly string DebugMessage =
        $"The network 'Net' is compiled without optimization, so its kernels run about {Unrolled.Runtime.DebugBuildWarning.Slowdown}× slower: " +
        "build with -c Release (or <Optimize>true</Optimize>) to train and infer at full speed";

    [Fact]
    public void UNR0018_a_debug_build_is_reported_on_the_network_and_warns_at_run_time()
    {
        string source = Declare("[{|Network(1, 8, 8)|}] [Conv2D(2, 3)] [Dense(2)]");
        GeneratorOutput run = GeneratorHarness.Run(Debug, source);

        Diagnostic d = Assert.Single(run.ProjectDiagnostics);
        Assert.Equal("UNR0018", d.Id);
        Assert.Equal(DiagnosticSeverity.Info, d.Severity);
        Assert.Equal(DebugMessage, d.GetMessage(CultureInfo.InvariantCulture));
        MarkedSource file = run.Sources[0];
        Assert.Equal(file.Spans.Single(), d.Location.SourceSpan);
        Assert.Equal(file.Path, d.Location.GetLineSpan().Path);

        // The network is generated as in Release, plus a static constructor that calls the run-time warning.
        Assert.Equal(new[] { "Tests.Net.DebugBuild.g.cs", "Tests.Net.g.cs" }, run.GeneratedSources.Select(s => s.HintName).OrderBy(n => n, System.StringComparer.Ordinal));
        string debugPart = run.GeneratedSources.Single(s => s.HintName == "Tests.Net.DebugBuild.g.cs").Text;
        Assert.Contains("namespace Tests;", debugPart);
        Assert.Contains("static Net()", debugPart);
        Assert.Contains("global::Unrolled.Runtime.DebugBuildWarning.Report(\"Net\");", debugPart);
        Assert.Equal(
            GeneratorHarness.Run(source).GeneratedSources.Single().Text,
            run.GeneratedSources.Single(s => s.HintName == "Tests.Net.g.cs").Text);
        Assert.True(!run.CompilationWarningsAndErrors.Any(), GeneratorOutput.Describe(run.CompilationWarningsAndErrors));
    }

    [Fact]
    public void UNR0018_is_not_reported_in_a_release_build()
    {
        GeneratorOutput run = GeneratorHarness.Run(GeneratorHarness.CompilationOptions.WithOptimizationLevel(OptimizationLevel.Release),
            Declare("[Network(1, 8, 8)] [Conv2D(2, 3)] [Dense(2)]"));
        Assert.Empty(run.ProjectDiagnostics);
        Assert.Equal("Tests.Net.g.cs", Assert.Single(run.GeneratedSources).HintName);
        Assert.DoesNotContain("DebugBuildWarning", run.GeneratedSources[0].Text);
    }

    [Fact]
    public void UNR0018_can_be_suppressed_with_a_pragma_or_a_severity()
    {
        GeneratorOutput run = GeneratorHarness.Run(Debug, File(
            "#pragma warning disable UNR0018\n[Network(1, 8, 8)] [Dense(2)]\npublic partial class Net { }\n#pragma warning restore UNR0018"));
        Assert.True(run.ProjectDiagnostics.All(d => d.IsSuppressed), GeneratorOutput.Describe(run.ProjectDiagnostics));

        run = GeneratorHarness.Run(Debug.WithSpecificDiagnosticOptions(new Dictionary<string, ReportDiagnostic> { ["UNR0018"] = ReportDiagnostic.Suppress }),
            Declare("[Network(1, 8, 8)] [Dense(2)]"));
        Assert.Empty(run.ProjectDiagnostics);
        Assert.Equal(2, run.GeneratedSources.Count);
    }

    [Fact]
    public void UNR0018_is_not_reported_for_a_network_with_errors()
    {
        GeneratorOutput run = GeneratorHarness.Run(Debug, Declare("[Network(1, 8, 8)] [{|Conv2D(2, 9)|}]"));
        Assert.Equal("UNR0005", Assert.Single(run.ProjectDiagnostics).Id);
        Assert.Empty(run.GeneratedSources);
    }
}

/// <summary>Declarations that are fine: no diagnostics at all, and generated code that compiles without warnings.</summary>
public class ValidNetworkTests
{
    /// <summary>The four networks of BENCHMARKS.md and a few variants, each declared as class <c>Net</c>.</summary>
    public static TheoryData<string, string> Networks => new()
    {
        { "LeNet5", "[Network(1, 28, 28)] [Conv2D(6, 5, Padding = 2, Activation = Activation.ReLU)] [MaxPool2D(2)] [Conv2D(16, 5, Activation = Activation.ReLU)] [MaxPool2D(2)] [Dense(120, Activation = Activation.ReLU)] [Dense(84, Activation = Activation.ReLU)] [Dense(10)]" },
        { "SimpleConvNet", "[Network(1, 28, 28)] [Conv2D(30, 5, Activation = Activation.ReLU)] [MaxPool2D(2)] [Dense(100, Activation = Activation.ReLU)] [Dense(10)]" },
        { "KerasBaseline", "[Network(3, 32, 32)] [Conv2D(6, 5, Padding = Padding.Same)] [BatchNorm] [ReLU] [MaxPool2D(2)] [Dropout(0.2)] [Dense(128, Activation = Activation.ReLU)] [Dropout(0.2)] [Dense(10)]" },
        { "CifarVgg", "[Network(3, 32, 32)] [Conv2D(32, 3, Padding = 1, Activation = Activation.ReLU)] [Conv2D(32, 3, Padding = 1, Activation = Activation.ReLU)] [MaxPool2D(2)] [Conv2D(64, 3, Padding = 1, Activation = Activation.ReLU)] [Conv2D(64, 3, Padding = 1, Activation = Activation.ReLU)] [MaxPool2D(2)] [Dense(256, Activation = Activation.ReLU)] [Dense(10)]" },
        { "Same padding, stride 2", "[Network(3, 15, 15)] [Conv2D(4, 3, Stride = 2, Padding = Padding.Same)] [Dense(10)]" },
        { "Same padding, stride above kernel", "[Network(1, 28, 28)] [Conv2D(4, 3, Stride = 3, Padding = Padding.Same)] [AvgPool2D(5, Stride = 1, Padding = Padding.Same)] [Dense(2)]" },
        { "1-D input", "[Network(20)] [Dense(16, Activation = Activation.ReLU)] [BatchNorm] [Dense(3)]" },
        { "MSE on an image output", "[Network(1, 8, 8, Loss = Loss.MeanSquaredError)] [Conv2D(2, 3)]" },
        { "MSE on one unit", "[Network(4, Loss = Loss.MeanSquaredError)] [Dense(1, Activation = Activation.Sigmoid)]" },
        { "kernel larger than the input, fitted by padding", "[Network(2, 3, 3)] [Conv2D(4, 5, Padding = 1)] [Dense(2)]" },
        { "pool padding of exactly half the window", "[Network(3, 7, 7)] [MaxPool2D(3, Padding = 1)] [AvgPool2D(2, Stride = 1, Padding = 1)] [Dense(2)]" },
        { "dropout p = 0", "[Network(3, 8, 8)] [Dropout(0)] [Dense(2)]" },
        { "every layer kind", "[Network(3, 16, 16)] [Conv2D(8, 3, 5, Padding = 1, Bias = false, Activation = Activation.LeakyReLU)] [LocalResponseNorm(3)] [AvgPool2D(2)] [BatchNorm] [Tanh] [MaxPool2D(2, Padding = Padding.Same)] [Sigmoid] [Conv2D(4, 1, Activation = Activation.Sigmoid)] [GlobalAvgPool2D] [BatchNorm] [Dense(6, Activation = Activation.Tanh)] [LeakyReLU(0.2)] [Dropout(0.5)] [Flatten] [Dense(3, Bias = false)] [ReLU] [Softmax]" },
        { "strides beyond the input", "[Network(2, 5, 5, Loss = Loss.MeanSquaredError)] [ReLU] [Conv2D(3, 5, Stride = int.MaxValue)] [Conv2D(2, 1, Stride = 100000)] [MaxPool2D(1, Stride = int.MaxValue)] [AvgPool2D(1, Stride = int.MaxValue)]" },
        { "explicit names", "[Network(1, 8, 8)] [Conv2D(4, 3, Name = \"features\")] [Dense(10, Name = \"classifier\")]" },
    };

    [Theory]
    [MemberData(nameof(Networks))]
    public void A_valid_network_compiles_without_any_diagnostic(string name, string attributes)
    {
        GeneratorOutput run = GeneratorHarness.Run(DiagnosticTests.Declare(attributes));

        Assert.True(run.ProjectDiagnostics.Count == 0, $"{name}:\n{GeneratorOutput.Describe(run.ProjectDiagnostics)}");
        Assert.Equal("Tests.Net.g.cs", Assert.Single(run.GeneratedSources).HintName);
        Assert.True(!run.CompilationWarningsAndErrors.Any(), $"{name}:\n{GeneratorOutput.Describe(run.CompilationWarningsAndErrors)}");
    }

    [Fact]
    public void Networks_in_the_global_namespace_and_internal_classes_are_generated()
    {
        GeneratorOutput run = GeneratorHarness.Run(
            "using Unrolled;\n\n[Network(4)] [Dense(2)]\npublic partial class GlobalNet { }\n\n[Network(1, 4, 4)] [Dense(3)]\ninternal partial class InternalNet { }\n");

        Assert.Empty(run.ProjectDiagnostics);
        Assert.Equal(new[] { "GlobalNet.g.cs", "InternalNet.g.cs" }, run.GeneratedSources.Select(s => s.HintName).OrderBy(n => n));
        Assert.True(!run.CompilationWarningsAndErrors.Any(), GeneratorOutput.Describe(run.CompilationWarningsAndErrors));
    }

    [Fact]
    public void A_network_split_over_partial_declarations_is_generated()
    {
        GeneratorOutput run = GeneratorHarness.Run(
            DiagnosticTests.File("[Network(1, 8, 8)] [Conv2D(2, 3)]\npublic partial class Net { public int Extra => 1; }"),
            DiagnosticTests.File("[Dense(2)]\npublic partial class Net { void Helper() { } }"));

        Assert.Empty(run.ProjectDiagnostics);
        Assert.Single(run.GeneratedSources);
        Assert.True(!run.CompilationWarningsAndErrors.Any(), GeneratorOutput.Describe(run.CompilationWarningsAndErrors));
    }
}

using System.Collections.Generic;
using Microsoft.CodeAnalysis;

namespace Unrolled.Generator;

/// <summary>Every diagnostic the generator and analyzers report. IDs are stable; never reuse one.</summary>
internal static class Diagnostics
{
    private const string Category = "Unrolled";

    /// <summary>The diagnostics page; each ID has a section whose anchor is the ID in lower case.</summary>
    public const string HelpBase = "https://github.com/unrolled-net/unrolled/blob/main/docs/diagnostics.md";

    /// <summary>The help link of a diagnostic: its section of docs/diagnostics.md.</summary>
    public static string HelpLink(string id) => HelpBase + "#" + id.ToLowerInvariant();

    private static DiagnosticDescriptor Create(string id, string title, string message, DiagnosticSeverity severity, string help)
        => new(id, title, message, Category, severity, isEnabledByDefault: true, description: help, helpLinkUri: HelpLink(id));

    private static DiagnosticDescriptor Error(string id, string title, string message, string help)
        => Create(id, title, message, DiagnosticSeverity.Error, help);

    private static DiagnosticDescriptor Warning(string id, string title, string message, string help)
        => Create(id, title, message, DiagnosticSeverity.Warning, help);

    private static DiagnosticDescriptor Info(string id, string title, string message, string help)
        => Create(id, title, message, DiagnosticSeverity.Info, help);

    public static readonly DiagnosticDescriptor NotPartial = Error("UNR0001",
        "Network class must be partial",
        "The network class '{0}' must be declared partial so that the generator can add its members",
        "Add the 'partial' modifier to the class declaration.");

    public static readonly DiagnosticDescriptor NoLayers = Error("UNR0002",
        "Network has no layers",
        "The network '{0}' declares no layers",
        "Add layer attributes such as [Conv2D(…)] or [Dense(…)] after [Network(…)].");

    public static readonly DiagnosticDescriptor NotPositive = Error("UNR0003",
        "Size must be positive",
        "{0}: {1} must be positive but is {2}",
        "Input sizes, filter counts, kernels, strides, units and window sizes must be at least 1.");

    public static readonly DiagnosticDescriptor PoolPaddingTooLarge = Error("UNR0004",
        "Pooling padding larger than half the window",
        "{0}: padding {1} is larger than half the {2}×{2} window",
        "PyTorch requires pooling padding to be at most half the window size.");

    public static readonly DiagnosticDescriptor WindowTooLarge = Error("UNR0005",
        "Kernel or window larger than its input",
        "{0} needs at least {1}×{2} but receives {3}×{4} from {5}",
        "The kernel or pooling window does not fit the padded input. Use a smaller kernel, padding, or Padding.Same.");

    public static readonly DiagnosticDescriptor SoftmaxOn3D = Error("UNR0006",
        "Softmax needs a 1-D input",
        "{0}: Softmax needs a 1-D input but receives {1} from {2}; add [Flatten] or [Dense] before it",
        "Softmax is taken over the features of each sample; flatten the image first.");

    public static readonly DiagnosticDescriptor DropoutRange = Error("UNR0007",
        "Dropout probability out of range",
        "{0}: dropout probability must be in [0, 1) but is {1}",
        "p is the probability of dropping a value; p = 1 would drop everything.");

    public static readonly DiagnosticDescriptor LossMismatch = Error("UNR0008",
        "Loss does not fit the output",
        "The loss {0} does not fit the network's output {1}: {2}",
        "Cross-entropy needs a 1-D output of at least two classes.");

    public static readonly DiagnosticDescriptor LayerWithoutNetwork = Error("UNR0009",
        "Layer attribute without [Network]",
        "The class '{0}' has layer attributes but no [Network(…)] attribute, so no network is generated",
        "Add [Network(channels, height, width)] before the layers.");

    public static readonly DiagnosticDescriptor DuplicateName = Error("UNR0010",
        "Layer name used twice",
        "The layer name '{0}' is used by more than one layer",
        "Each layer name must be unique: it becomes the prefix of the layer's tensors in weight files.");

    public static readonly DiagnosticDescriptor StrideDropsInput = Warning("UNR0011",
        "Stride leaves input unused",
        "{0}: with a {1}×{2} window and stride {3}, the last {4} row(s) and {5} column(s) of the {6}×{7} padded input are never read",
        "The window does not tile the input exactly; change the padding, kernel or stride, or use Padding.Same.");

    public static readonly DiagnosticDescriptor NegativePadding = Error("UNR0012",
        "Negative padding",
        "{0}: padding must be zero or more (or Padding.Same) but is {1}",
        "Use a non-negative number of cells, Padding.Same or Padding.Valid.");

    public static readonly DiagnosticDescriptor UnsupportedClass = Error("UNR0013",
        "Unsupported network class",
        "The network class '{0}' {1}",
        "A network must be a non-generic, non-nested, non-static, non-file-local partial class that declares no base class and no primary constructor, and is not named like a member the generator adds (Forward, Summary, …).");

    public static readonly DiagnosticDescriptor InvalidName = Error("UNR0014",
        "Invalid layer name",
        "The layer name '{0}' is not valid: {1}",
        "Names must be non-empty and must not contain '.' or whitespace, since they become state_dict keys.");

    public static readonly DiagnosticDescriptor InvalidValue = Error("UNR0015",
        "Invalid layer option",
        "{0}: {1}",
        "The option is outside the range the layer supports.");

    public static readonly DiagnosticDescriptor TooLarge = Error("UNR0016",
        "Network too large",
        "The network '{0}' is too large: {1}",
        "Sizes are limited so that every buffer fits in a .NET array.");

    public static readonly DiagnosticDescriptor UnsafeNotAllowed = Error("UNR0017",
        "Unsafe code must be allowed",
        "The network '{0}' compiles to pointer-based kernels: set <AllowUnsafeBlocks>true</AllowUnsafeBlocks> in the project",
        "Generated kernels use pointers into pinned workspaces. The Unrolled package sets AllowUnsafeBlocks for you; a project reference does not.");

    public static readonly DiagnosticDescriptor DebugBuild = Info("UNR0018",
        "Network kernels compiled without optimization",
        "The network '{0}' is compiled without optimization, so its kernels run about 20–45× slower: build with -c Release (or <Optimize>true</Optimize>) to train and infer at full speed",
        "In a Debug build the JIT does not optimize the generated kernels. The network also writes one warning to standard error when first used; set UNROLLED_NO_DEBUG_WARNING=1 or the AppContext switch Unrolled.SuppressDebugBuildWarning to silence it.");

    public static readonly DiagnosticDescriptor InternalError = Error("UNR0099",
        "Internal generator error",
        "The generator could not emit '{0}': {1}. Please report this declaration.",
        "A bug in the generator; the declaration itself may be fine.");

    private static readonly Dictionary<string, DiagnosticDescriptor> All = new()
    {
        [NotPartial.Id] = NotPartial, [NoLayers.Id] = NoLayers, [NotPositive.Id] = NotPositive,
        [PoolPaddingTooLarge.Id] = PoolPaddingTooLarge, [WindowTooLarge.Id] = WindowTooLarge,
        [SoftmaxOn3D.Id] = SoftmaxOn3D, [DropoutRange.Id] = DropoutRange, [LossMismatch.Id] = LossMismatch,
        [LayerWithoutNetwork.Id] = LayerWithoutNetwork, [DuplicateName.Id] = DuplicateName,
        [StrideDropsInput.Id] = StrideDropsInput, [NegativePadding.Id] = NegativePadding,
        [UnsupportedClass.Id] = UnsupportedClass, [InvalidName.Id] = InvalidName,
        [InvalidValue.Id] = InvalidValue, [TooLarge.Id] = TooLarge, [InternalError.Id] = InternalError, [UnsafeNotAllowed.Id] = UnsafeNotAllowed,
        [DebugBuild.Id] = DebugBuild,
    };

    /// <summary>Every descriptor, for the tests (each must have a section on the diagnostics page).</summary>
    public static IEnumerable<DiagnosticDescriptor> Descriptors => All.Values;

    public static DiagnosticDescriptor ById(string id) => All[id];
}

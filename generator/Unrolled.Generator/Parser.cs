using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Globalization;
using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Unrolled.Generator.Model;

namespace Unrolled.Generator;

/// <summary>
/// Symbols → model. Reads the [Network] class's layer attributes in source order, infers every shape
/// once, assigns names and parameter offsets, and collects diagnostics. Nothing from the compilation
/// leaves this class.
/// </summary>
internal static class Parser
{
    public const string Namespace = "Unrolled";
    public const string NetworkAttributeName = "Unrolled.NetworkAttribute";

    /// <summary>Simple names of the layer attributes, mapped to the layer kind.</summary>
    public static readonly ImmutableDictionary<string, LayerKind> LayerAttributes = new Dictionary<string, LayerKind>
    {
        ["Conv2DAttribute"] = LayerKind.Conv2D,
        ["DenseAttribute"] = LayerKind.Dense,
        ["MaxPool2DAttribute"] = LayerKind.MaxPool2D,
        ["AvgPool2DAttribute"] = LayerKind.AvgPool2D,
        ["GlobalAvgPool2DAttribute"] = LayerKind.GlobalAvgPool2D,
        ["FlattenAttribute"] = LayerKind.Flatten,
        ["BatchNormAttribute"] = LayerKind.BatchNorm,
        ["DropoutAttribute"] = LayerKind.Dropout,
        ["LocalResponseNormAttribute"] = LayerKind.LocalResponseNorm,
        ["ReLUAttribute"] = LayerKind.ReLU,
        ["LeakyReLUAttribute"] = LayerKind.LeakyReLU,
        ["SigmoidAttribute"] = LayerKind.Sigmoid,
        ["TanhAttribute"] = LayerKind.Tanh,
        ["SoftmaxAttribute"] = LayerKind.Softmax,
    }.ToImmutableDictionary();

    /// <summary>Default name prefixes: kind and a 1-based ordinal among layers of that kind.</summary>
    public static string DefaultPrefix(LayerKind kind) => kind switch
    {
        LayerKind.Conv2D => "conv",
        LayerKind.Dense => "dense",
        LayerKind.MaxPool2D => "maxpool",
        LayerKind.AvgPool2D => "avgpool",
        LayerKind.GlobalAvgPool2D => "gap",
        LayerKind.Flatten => "flatten",
        LayerKind.BatchNorm => "bn",
        LayerKind.Dropout => "dropout",
        LayerKind.LocalResponseNorm => "lrn",
        LayerKind.ReLU => "relu",
        LayerKind.LeakyReLU => "leakyrelu",
        LayerKind.Sigmoid => "sigmoid",
        LayerKind.Tanh => "tanh",
        _ => "softmax",
    };

    private const int SamePadding = int.MinValue;
    private const long MaxElements = 1L << 28; // per buffer: keeps every workspace well inside an int-indexed array

    /// <summary>Is this a layer attribute of ours (by full name)?</summary>
    public static bool TryGetLayerKind(INamedTypeSymbol? attributeClass, out LayerKind kind)
    {
        kind = default;
        return attributeClass is not null
            && attributeClass.ContainingNamespace is { Name: Namespace, ContainingNamespace.IsGlobalNamespace: true }
            && LayerAttributes.TryGetValue(attributeClass.Name, out kind);
    }

    public static ParseResult Parse(GeneratorAttributeSyntaxContext context, CancellationToken ct)
    {

        var type = (INamedTypeSymbol)context.TargetSymbol;
        var diagnostics = new List<DiagnosticInfo>();
        string hintName = HintName(type);
        AttributeData networkAttribute = context.Attributes[0];
        LocationInfo? classLocation = LocationInfo.From(type.Locations.FirstOrDefault());
        LocationInfo? networkLocation = Where(networkAttribute, ct) ?? classLocation;

        void Report(DiagnosticDescriptor d, LocationInfo? where, params object[] args)
            => diagnostics.Add(new DiagnosticInfo(d.Id, where, args.Select(a => Convert.ToString(a, CultureInfo.InvariantCulture) ?? "").ToEquatableArray()));

        ParseResult Fail() => new(null, diagnostics.ToEquatableArray(), hintName, networkLocation);

        // The class itself.
        bool isPartial = type.DeclaringSyntaxReferences.All(r =>
            r.GetSyntax(ct) is TypeDeclarationSyntax c && c.Modifiers.Any(SyntaxKind.PartialKeyword));
        if (!isPartial) Report(Diagnostics.NotPartial, classLocation, type.Name);
        if (type.ContainingType is not null) Report(Diagnostics.UnsupportedClass, classLocation, type.Name, "is nested in another type; declare it at namespace level");
        else if (type.IsGenericType) Report(Diagnostics.UnsupportedClass, classLocation, type.Name, "is generic; networks cannot have type parameters");
        else if (type.BaseType is { SpecialType: not SpecialType.System_Object }) Report(Diagnostics.UnsupportedClass, classLocation, type.Name, Inv($"derives from '{type.BaseType.Name}'; a network cannot declare a base class"));
        else if (type.IsRecord) Report(Diagnostics.UnsupportedClass, classLocation, type.Name, "is a record; declare it as a partial class");
        else if (type.IsStatic) Report(Diagnostics.UnsupportedClass, classLocation, type.Name, "is static");
        else if (type.IsFileLocal) Report(Diagnostics.UnsupportedClass, classLocation, type.Name, "is file-local; the generated part, in another file, would be another class");
        else if (type.DeclaringSyntaxReferences.Any(r => r.GetSyntax(ct) is TypeDeclarationSyntax { ParameterList: not null }))
            Report(Diagnostics.UnsupportedClass, classLocation, type.Name, "has a primary constructor; the generated constructor (int seed = 0) cannot chain to it");
        // A class cannot have a member named like itself (CS0542): the generated part declares the names of GeneratedNames.
        else if (GeneratedNames.Public.Contains(type.Name))
            Report(Diagnostics.UnsupportedClass, classLocation, type.Name, Inv($"has the name of the member '{type.Name}' that every network has; rename the class"));
        else if (GeneratedNames.IsMember(type.Name))
            Report(Diagnostics.UnsupportedClass, classLocation, type.Name, Inv($"has the name of the private member '{type.Name}' that the generated code declares; rename the class"));
        if (diagnostics.Count > 0) return Fail();

        // Input shape and loss.
        if (HasErrors(networkAttribute)) return Fail();
        var ctorArgs = networkAttribute.ConstructorArguments;
        Shape input;
        if (ctorArgs.Length == 1)
        {
            int f = (int)ctorArgs[0].Value!;
            if (f <= 0) Report(Diagnostics.NotPositive, networkLocation, "Network", "the input feature count", f);
            input = Shape.Flat(f);
        }
        else
        {
            int c = (int)ctorArgs[0].Value!, h = (int)ctorArgs[1].Value!, w = (int)ctorArgs[2].Value!;
            if (c <= 0) Report(Diagnostics.NotPositive, networkLocation, "Network", "the input channel count", c);
            if (h <= 0) Report(Diagnostics.NotPositive, networkLocation, "Network", "the input height", h);
            if (w <= 0) Report(Diagnostics.NotPositive, networkLocation, "Network", "the input width", w);
            input = Shape.Image(c, h, w);
        }
        int loss = Named(networkAttribute, "Loss", 0);
        if (diagnostics.Count > 0) return Fail();
        if ((long)input.C * input.H * input.W > MaxElements)
        {
            Report(Diagnostics.TooLarge, networkLocation, type.Name, Inv($"the input has {(long)input.C * input.H * input.W} values per sample; at most {MaxElements} are supported"));
            return Fail();
        }

        // Layers in source order.
        var layerAttributes = new List<(AttributeData Data, LayerKind Kind, LocationInfo? Where)>();
        foreach (AttributeData a in type.GetAttributes())
        {
            if (!TryGetLayerKind(a.AttributeClass, out LayerKind kind)) continue;
            if (HasErrors(a)) return Fail(); // the compiler already reports the bad argument
            layerAttributes.Add((a, kind, Where(a, ct) ?? classLocation));
        }
        if (layerAttributes.Count == 0)
        {
            Report(Diagnostics.NoLayers, networkLocation, type.Name);
            return Fail();
        }

        var layers = new List<LayerSpec>();
        var ordinals = new Dictionary<LayerKind, int>();
        var names = new Dictionary<string, int>(StringComparer.Ordinal);
        Shape shape = input;
        string producer = "the input";
        int parameters = 0, buffers = 0, counters = 0;
        bool shapeBroken = false;

        for (int i = 0; i < layerAttributes.Count; i++)
        {
            ct.ThrowIfCancellationRequested();
            var (data, kind, where) = layerAttributes[i];
            ordinals.TryGetValue(kind, out int ordinal);
            ordinals[kind] = ++ordinal;
            string? explicitName = Named<string?>(data, "Name", null);
            string name = explicitName ?? DefaultPrefix(kind) + ordinal.ToString(CultureInfo.InvariantCulture);
            if (explicitName is not null)
            {
                string? problem = explicitName.Length == 0 ? "it is empty"
                    : explicitName.Contains('.') ? "it contains '.'"
                    : explicitName.Any(char.IsWhiteSpace) ? "it contains whitespace"
                    : explicitName.Any(char.IsControl) ? "it contains control characters"
                    : null;
                if (problem is not null) Report(Diagnostics.InvalidName, where, explicitName, problem);
            }
            if (names.ContainsKey(name)) Report(Diagnostics.DuplicateName, where, name);
            else names[name] = i;

            if (shapeBroken) continue; // later layers cannot be checked against an unknown shape

            int errorsBefore = diagnostics.Count(d => Diagnostics.ById(d.Id).DefaultSeverity == DiagnosticSeverity.Error);
            LayerSpec? layer = InferLayer(type.Name, kind, data, name, i, shape, producer, where, Report, ref parameters, ref buffers, ref counters);
            int errorsAfter = diagnostics.Count(d => Diagnostics.ById(d.Id).DefaultSeverity == DiagnosticSeverity.Error);
            if (layer is null || errorsAfter > errorsBefore)
            {
                shapeBroken = true;
                continue;
            }
            layers.Add(layer);
            shape = layer.Output;
            producer = name;
            if ((long)shape.C * shape.H * shape.W > MaxElements || parameters > MaxElements)
            {
                Report(Diagnostics.TooLarge, where, type.Name, Inv($"{name} produces {(long)shape.C * shape.H * shape.W} values per sample and the network has {parameters} parameters so far; at most {MaxElements} of each are supported"));
                shapeBroken = true;
            }
            else if (WorkspaceProblem(layers, name) is { } problem)
            {
                Report(Diagnostics.TooLarge, where, type.Name, problem);
                shapeBroken = true;
            }
        }

        if (!shapeBroken)
        {
            // The loss must fit the output.
            Shape output = shape;
            if (loss == 0)
            {
                if (!output.IsFlat)
                    Report(Diagnostics.LossMismatch, networkLocation, "CrossEntropy", output, Inv($"cross-entropy needs a 1-D output of class scores, but {producer} produces an image; add [Flatten] or [Dense(classes)]"));
                else if (output.C < 2)
                    Report(Diagnostics.LossMismatch, networkLocation, "CrossEntropy", output, "cross-entropy needs at least two classes");
            }
            else if (loss != 1)
            {
                Report(Diagnostics.InvalidValue, networkLocation, "Network", Inv($"unknown loss value {loss}"));
            }
        }

        if (diagnostics.Any(d => Diagnostics.ById(d.Id).DefaultSeverity == DiagnosticSeverity.Error) || shapeBroken)
            return Fail();

        // The namespace's names as declared (without '@'): the emitter writes each as an identifier.
        var segments = new List<string>();
        for (INamespaceSymbol n = type.ContainingNamespace; !n.IsGlobalNamespace; n = n.ContainingNamespace) segments.Insert(0, n.Name);
        string? ns = segments.Count == 0 ? null : string.Join(".", segments);
        string accessibility = type.DeclaredAccessibility == Accessibility.Public ? "public" : "internal";
        var spec = new NetworkSpec(ns, type.Name, accessibility, input, loss, layers.ToEquatableArray(), parameters, buffers, counters);
        return new ParseResult(spec, diagnostics.ToEquatableArray(), hintName, networkLocation);
    }

    /// <summary>
    /// The generated code's own buffers for <paramref name="layers"/> (the network so far, ending with
    /// <paramref name="name"/>) must each fit one .NET array: the per-thread workspace, whose convolution buffers
    /// (the padded, stride-phase input; the output at a row pitch of 16) can be much larger than the tensors, and the
    /// activations training saves per sample. Checked after every layer, so the first layer at which the network so
    /// far no longer fits is the one reported. Null when they fit.
    /// </summary>
    private static string? WorkspaceProblem(IReadOnlyList<LayerSpec> layers, string name)
    {
        var plan = new WorkspacePlan(layers);
        if (plan.Size > WorkspacePlan.MaxFloats)
            return Inv($"{name}: the layers up to {name} need a workspace of {Floats(plan.Size)} per thread (the largest convolution buffer, a padded input split into stride phases or an output with rows padded to 16 floats, takes {Floats(plan.LargestConvBuffer)}); one .NET array holds at most {WorkspacePlan.MaxFloats} floats");
        if (plan.ActivationFloatsPerSample > WorkspacePlan.MaxFloats)
            return Inv($"{name}: training would keep {Floats(plan.ActivationFloatsPerSample)} of layer outputs per sample (each rounded up to 16 floats); one .NET array holds at most {WorkspacePlan.MaxFloats} floats");
        return null;
    }

    private static string Floats(long count) => count >= Saturating.Max ? Inv($"more than {Saturating.Max} floats") : Inv($"{count} floats");

    private delegate void Reporter(DiagnosticDescriptor descriptor, LocationInfo? where, params object[] args);

    private static LayerSpec? InferLayer(string className, LayerKind kind, AttributeData data, string name, int index, Shape input, string producer,
        LocationInfo? where, Reporter report, ref int parameters, ref int buffers, ref int counters)
    {
        var args = data.ConstructorArguments;
        int parametersBefore = parameters;
        int kh = 1, kw = 1, stride = 1, pad = 0;
        bool bias = true, same = false;
        Act act = Act.None;
        double p = 0, slope = 0.01, alpha = 1e-4, beta = 0.75, k = 1;
        int lrn = 0;
        Shape output;
        int pt = 0, pb = 0, pl = 0, pr = 0;
        int weightOffset = -1, biasOffset = -1, bufferOffset = -1, counterIndex = -1;

        bool NeedImage()
        {
            if (!input.IsFlat) return true;
            report(Diagnostics.InvalidValue, where, name, Inv($"{kind} needs an image (C×H×W) input but receives the 1-D shape {input.C} from {producer}"));
            return false;
        }

        bool Positive(string what, long value)
        {
            if (value > 0) return true;
            report(Diagnostics.NotPositive, where, name, what, value);
            return false;
        }

        // Resolves a window over the input: padding (integer or Same), the output size, and the checks.
        bool Window(string what, bool isPool)
        {
            // A pool's stride defaults to its size: one message for a bad size, not a second for the stride.
            bool ok = isPool
                ? Positive("the window size", kh) && Positive("the stride", stride)
                : Positive("the kernel height", kh) & Positive("the kernel width", kw) & Positive("the stride", stride);
            if (pad != SamePadding && pad < 0)
            {
                report(Diagnostics.NegativePadding, where, name, pad);
                ok = false;
            }
            if (!ok) return false;
            if (isPool && pad != SamePadding && (pad > kh / 2 || pad > kw / 2))
            {
                report(Diagnostics.PoolPaddingTooLarge, where, name, pad, kh);
                return false;
            }
            if (pad == SamePadding)
            {
                same = true;
                long ho = ((long)input.H + stride - 1) / stride, wo = ((long)input.W + stride - 1) / stride;
                long th = Math.Max((ho - 1) * stride + kh - input.H, 0), tw = Math.Max((wo - 1) * stride + kw - input.W, 0);
                if (th > MaxElements || tw > MaxElements)
                {
                    report(Diagnostics.TooLarge, where, className, Inv($"{name}: Same padding of {th}×{tw} cells is more than supported ({MaxElements})"));
                    return false;
                }
                pt = (int)(th / 2); pb = (int)(th - pt); pl = (int)(tw / 2); pr = (int)(tw - pl);
                output = Shape.Image(0, (int)ho, (int)wo);
                return true;
            }
            if (pad > MaxElements)
            {
                report(Diagnostics.TooLarge, where, className, Inv($"{name}: padding {pad} is more than supported ({MaxElements})"));
                return false;
            }
            pt = pb = pl = pr = pad;
            long hp = (long)input.H + 2L * pad, wp = (long)input.W + 2L * pad;
            if (hp < kh || wp < kw)
            {
                report(Diagnostics.WindowTooLarge, where, name, kh, kw, hp, wp, producer + (pad > 0 ? Inv($" (padded by {pad})") : ""));
                return false;
            }
            long dropRows = (hp - kh) % stride, dropCols = (wp - kw) % stride;
            if (dropRows != 0 || dropCols != 0)
                report(Diagnostics.StrideDropsInput, where, name, kh, kw, stride, dropRows, dropCols, hp, wp);
            long outH = (hp - kh) / stride + 1, outW = (wp - kw) / stride + 1;
            if (outH * outW > MaxElements)
            {
                report(Diagnostics.TooLarge, where, className, Inv($"{name}: the output would be {outH}×{outW}, more values than supported ({MaxElements})"));
                return false;
            }
            output = Shape.Image(0, (int)outH, (int)outW);
            return true;
        }

        bool Fits(string what, long count)
        {
            if (count <= MaxElements && parametersBefore + count <= MaxElements) return true;
            report(Diagnostics.TooLarge, where, className, Inv($"{name}: {what} would bring the parameter count to {parametersBefore + count}, more than supported ({MaxElements})"));
            return false;
        }

        output = input;
        switch (kind)
        {
            case LayerKind.Conv2D:
            {
                int filters = (int)args[0].Value!;
                kh = (int)args[1].Value!;
                kw = args.Length > 2 ? (int)args[2].Value! : kh;
                stride = Named(data, "Stride", 1);
                pad = Named(data, "Padding", 0);
                bias = Named(data, "Bias", true);
                act = (Act)Named(data, "Activation", 0);
                if (!NeedImage()) return null;
                bool ok = Positive("the filter count", filters);
                if (!Window("kernel", isPool: false) || !ok) return null;
                if ((long)filters * output.H * output.W > MaxElements)
                {
                    report(Diagnostics.TooLarge, where, className, Inv($"{name}: the output would be {filters}×{output.H}×{output.W}, more values than supported ({MaxElements})"));
                    return null;
                }
                if (!Fits(Inv($"{filters} filters of {input.C}×{kh}×{kw}"), (long)filters * input.C * kh * kw + filters)) return null;
                output = Shape.Image(filters, output.H, output.W);
                weightOffset = parameters;
                parameters += filters * input.C * kh * kw;
                if (bias) { biasOffset = parameters; parameters += filters; }
                break;
            }
            case LayerKind.Dense:
            {
                int units = (int)args[0].Value!;
                bias = Named(data, "Bias", true);
                act = (Act)Named(data, "Activation", 0);
                if (!Positive("the unit count", units)) return null;
                if (!Fits(Inv($"{units} units × {input.Size} inputs"), (long)units * input.Size + units)) return null;
                output = Shape.Flat(units);
                weightOffset = parameters;
                parameters += units * input.Size;
                if (bias) { biasOffset = parameters; parameters += units; }
                break;
            }
            case LayerKind.MaxPool2D:
            case LayerKind.AvgPool2D:
            {
                kh = kw = (int)args[0].Value!;
                stride = Named(data, "Stride", kh);
                pad = Named(data, "Padding", 0);
                if (!NeedImage()) return null;
                if (!Window("window", isPool: true)) return null;
                output = Shape.Image(input.C, output.H, output.W);
                break;
            }
            case LayerKind.GlobalAvgPool2D:
                if (!NeedImage()) return null;
                output = Shape.Flat(input.C);
                break;
            case LayerKind.Flatten:
                output = Shape.Flat(input.Size);
                break;
            case LayerKind.BatchNorm:
                weightOffset = parameters;
                biasOffset = parameters + input.C;
                parameters += 2 * input.C;
                bufferOffset = buffers;
                buffers += 2 * input.C;
                counterIndex = counters++;
                break;
            case LayerKind.Dropout:
                p = Convert.ToDouble(args[0].Value, CultureInfo.InvariantCulture);
                if (!(p >= 0 && p < 1))
                {
                    report(Diagnostics.DropoutRange, where, name, p.ToString("R", CultureInfo.InvariantCulture));
                    return null;
                }
                break;
            case LayerKind.LocalResponseNorm:
                lrn = (int)args[0].Value!;
                alpha = Named(data, "Alpha", 1e-4);
                beta = Named(data, "Beta", 0.75);
                k = Named(data, "K", 1.0);
                if (!NeedImage()) return null; // across channels: PyTorch refuses a 1-D input too
                if (!Positive("the size", lrn)) return null;
                bool valid = k > 0 && !double.IsInfinity(k) && !double.IsNaN(alpha) && !double.IsInfinity(alpha) && !double.IsNaN(beta) && !double.IsInfinity(beta) && alpha >= 0;
                if (!valid || !IsFloat32(k) || !IsFloat32(alpha) || !IsFloat32(beta) || !((float)k > 0))
                {
                    report(Diagnostics.InvalidValue, where, name, Inv($"K must be positive and Alpha non-negative and finite (K = {k}, Alpha = {alpha}, Beta = {beta})")
                        + (valid ? Inv($"; in float32, which the network computes in, they are K = {(float)k}, Alpha = {(float)alpha}, Beta = {(float)beta}") : ""));
                    return null;
                }
                break;
            case LayerKind.LeakyReLU:
                slope = args.Length > 0 ? Convert.ToDouble(args[0].Value, CultureInfo.InvariantCulture) : 0.01;
                if (!IsFloat32(slope))
                {
                    report(Diagnostics.InvalidValue, where, name, Inv($"the slope must be finite but is {slope}")
                        + (double.IsNaN(slope) || double.IsInfinity(slope) ? "" : Inv($"; in float32, which the network computes in, it is {(float)slope}")));
                    return null;
                }
                break;
            case LayerKind.Softmax:
                if (!input.IsFlat)
                {
                    report(Diagnostics.SoftmaxOn3D, where, name, input, producer);
                    return null;
                }
                break;
        }

        if (act is < Act.None or > Act.Tanh)
        {
            report(Diagnostics.InvalidValue, where, name, Inv($"unknown activation value {(int)act}"));
            return null;
        }

        return new LayerSpec(kind, name, input, output, kh, kw, stride, pt, pb, pl, pr, same, bias, act,
            weightOffset, biasOffset, bufferOffset, counterIndex, p, slope, lrn, alpha, beta, k, index);
    }

    /// <summary>Is <paramref name="value"/> finite as the float32 constant the generated code holds it in?</summary>
    private static bool IsFloat32(double value) => !float.IsNaN((float)value) && !float.IsInfinity((float)value);

    /// <summary>Formats a message the same under every culture (a minus sign, a decimal point, infinity).</summary>
    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    private static bool HasErrors(AttributeData a)
        => a.AttributeClass is null or { TypeKind: TypeKind.Error }
           || a.AttributeConstructor is null
           || a.ConstructorArguments.Any(c => c.Kind == TypedConstantKind.Error || c.Value is null && c.Kind != TypedConstantKind.Array)
           || a.NamedArguments.Any(n => n.Value.Kind == TypedConstantKind.Error);

    private static T Named<T>(AttributeData a, string name, T fallback)
    {
        foreach (var pair in a.NamedArguments)
        {
            if (pair.Key != name) continue;
            object? value = pair.Value.Value;
            if (value is null) return default!;
            if (value is T t) return t;
            try { return (T)Convert.ChangeType(value, typeof(T), CultureInfo.InvariantCulture); }
            catch (Exception) { return fallback; }
        }
        return fallback;
    }

    private static LocationInfo? Where(AttributeData a, CancellationToken ct)
        => LocationInfo.From(a.ApplicationSyntaxReference?.GetSyntax(ct).GetLocation());

    private static string HintName(INamedTypeSymbol type)
    {
        string full = type.ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat).Replace("global::", "");
        var chars = full.Select(c => char.IsLetterOrDigit(c) || c == '.' || c == '_' ? c : '_').ToArray();
        return new string(chars) + ".g.cs";
    }
}

using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;
using Microsoft.CodeAnalysis.Text;
using Unrolled.Tests.Harness;

namespace Unrolled.Tests.Generator;

/// <summary>
/// One layer attribute as the fuzzer writes it. Options are null when omitted, so defaults are exercised too;
/// nothing here is checked: zero, negative and out-of-range values are the point.
/// </summary>
public sealed record FuzzLayer(LayerKind Kind)
{
    /// <summary>Positional integers: Conv2D filters, kernel (and kernel width); Dense units; pooling window; LRN size.</summary>
    public int[] Ints { get; init; } = Array.Empty<int>();
    /// <summary>Dropout p (always written), LeakyReLU slope (written when not null).</summary>
    public double? Real { get; init; }
    public int? Stride { get; init; }
    public int? Padding { get; init; }
    /// <summary>Write padding 0 as <c>Padding.Valid</c> and <c>int.MinValue</c> as <c>Padding.Same</c>.</summary>
    public bool PaddingByName { get; init; }
    public bool? Bias { get; init; }
    /// <summary>The raw value of the Activation option (values outside the enum are written as casts).</summary>
    public int? Activation { get; init; }
    public double? Alpha { get; init; }
    public double? Beta { get; init; }
    public double? K { get; init; }
    public string? Name { get; init; }

    /// <summary>The attribute without brackets, e.g. <c>Conv2D(6, 5, Padding = 2)</c>; named options in a random order.</summary>
    public string Render(Random rng)
    {
        var positional = Ints.Select(FuzzText.Int).ToList();
        if (Kind == LayerKind.Dropout || Kind == LayerKind.LeakyReLU && Real is not null) positional.Add(FuzzText.Real(Real ?? 0));
        var named = new List<string>();
        if (Stride is { } stride) named.Add($"Stride = {FuzzText.Int(stride)}");
        if (Padding is { } padding)
            named.Add("Padding = " + (PaddingByName && padding == Unrolled.Padding.Same ? "Padding.Same"
                : PaddingByName && padding == 0 ? "Padding.Valid" : FuzzText.Int(padding)));
        if (Bias is { } bias) named.Add(bias ? "Bias = true" : "Bias = false");
        if (Activation is { } activation)
            named.Add("Activation = " + (Enum.IsDefined(typeof(Activation), activation)
                ? $"Activation.{(Activation)activation}" : $"(Activation)({FuzzText.Int(activation)})"));
        if (Alpha is { } alpha) named.Add($"Alpha = {FuzzText.Real(alpha)}");
        if (Beta is { } beta) named.Add($"Beta = {FuzzText.Real(beta)}");
        if (K is { } k) named.Add($"K = {FuzzText.Real(k)}");
        if (Name is { } name) named.Add($"Name = {FuzzText.String(name)}");
        var arguments = positional.Concat(named.OrderBy(_ => rng.Next())).ToList();
        return arguments.Count == 0 && rng.Next(2) == 0 ? Kind.ToString() : $"{Kind}({string.Join(", ", arguments)})";
    }
}

/// <summary>How the class carrying the attributes is declared.</summary>
public enum ClassForm
{
    Public,
    Internal,
    /// <summary>Sealed, with a member of its own.</summary>
    Sealed,
    NotPartial,
    Static,
    Generic,
    Nested,
    /// <summary>Derives from a class of the test source.</summary>
    Derived,
    Record,
    FileLocal,
    PrimaryConstructor,
}

/// <summary>One fuzzed declaration: the class form, the [Network] attribute (input and loss) and the layers.</summary>
public sealed record FuzzDecl
{
    /// <summary>How it was made (valid, mutated, huge, shrinking, class), for the counts.</summary>
    public required string Scenario { get; init; }
    public ClassForm Form { get; init; } = ClassForm.Public;
    /// <summary>False: the layers sit on a class without [Network] (UNR0009).</summary>
    public bool HasNetwork { get; init; } = true;
    /// <summary>The [Network] arguments: one (features) or three (channels, height, width).</summary>
    public required int[] Input { get; init; }
    /// <summary>The raw Loss value, or null when the option is omitted.</summary>
    public int? Loss { get; init; }
    public required IReadOnlyList<FuzzLayer> Layers { get; init; }
    /// <summary>The [Network] attribute's position among the layer attributes (the parser does not care).</summary>
    public int NetworkPosition { get; init; }
    /// <summary>The class name, or null for <c>Net{index}</c>.</summary>
    public string? ClassName { get; init; }
    /// <summary>Namespace segments below the declaration's own namespace, or null.</summary>
    public string? Namespace { get; init; }

    public string RenderNetwork()
    {
        string input = string.Join(", ", Input.Select(FuzzText.Int));
        string loss = Loss switch
        {
            null => "",
            0 => ", Loss = Loss.CrossEntropy",
            1 => ", Loss = Loss.MeanSquaredError",
            { } other => $", Loss = (Loss)({FuzzText.Int(other)})",
        };
        return $"Network({input}{loss})";
    }
}

/// <summary>Where one declaration sits in the fuzz source, so that a diagnostic can be traced to its attribute.</summary>
/// <param name="Span">The whole declaration, attributes and class (for a nested class, the outer class too).</param>
/// <param name="ClassIdentifier">The class name token, where class-level diagnostics belong.</param>
/// <param name="Network">The [Network] attribute (inside the brackets), when there is one.</param>
/// <param name="Layers">Each layer attribute (inside the brackets), in declaration order.</param>
/// <param name="MetadataName">The class's full metadata name, to find it in the compilation and the assembly.</param>
public sealed record DeclLocation(TextSpan Span, TextSpan ClassIdentifier, TextSpan? Network, IReadOnlyList<TextSpan> Layers, string MetadataName);

/// <summary>C# literals for fuzzed values.</summary>
public static class FuzzText
{
    public static string Int(int value) => value switch
    {
        int.MaxValue => "int.MaxValue",
        int.MinValue => "int.MinValue",
        _ => value.ToString(CultureInfo.InvariantCulture),
    };

    public static string Real(double value)
    {
        if (double.IsNaN(value)) return "double.NaN";
        if (double.IsPositiveInfinity(value)) return "double.PositiveInfinity";
        if (double.IsNegativeInfinity(value)) return "double.NegativeInfinity";
        if (value == double.MaxValue) return "double.MaxValue";
        if (value == 0 && double.IsNegative(value)) return "-0.0";
        return value.ToString("R", CultureInfo.InvariantCulture); // "1" is an int literal that converts; "1E+300" a real one
    }

    public static string String(string value)
    {
        var text = new StringBuilder("\"");
        foreach (char c in value)
            text.Append(c switch
            {
                '"' => "\\\"",
                '\\' => "\\\\",
                // Control characters, line separators (C# new lines end a literal) and lone surrogates as escapes.
                _ when char.IsControl(c) || char.IsSurrogate(c) || char.IsWhiteSpace(c) && c != ' ' => $"\\u{(int)c:x4}",
                _ => c.ToString(),
            });
        return text.Append('"').ToString();
    }

    /// <summary>
    /// Writes the declarations into one source file (namespace <paramref name="namespace"/>, classes
    /// <c>Net{index}</c>; a declaration with its own class name or namespace goes into namespace <c>N{index}</c>
    /// below, so names never meet) and records where each one's attributes and class name are. Attribute lists
    /// hold one to three attributes and sit on one or several lines, at random.
    /// </summary>
    public static (string Source, IReadOnlyList<DeclLocation> Locations) Source(string @namespace, IReadOnlyList<(int Index, FuzzDecl Decl)> decls, Random rng)
    {
        var text = new StringBuilder();
        text.Append("using Unrolled;\n\nnamespace ").Append(@namespace).Append("\n{\npublic class FuzzBase { }\n");
        var locations = new List<DeclLocation>();
        foreach (var (index, decl) in decls)
        {
            text.Append('\n');
            int start = text.Length;
            string className = decl.ClassName ?? $"Net{index}";
            string? inner = decl.ClassName is null && decl.Namespace is null ? null
                : decl.Namespace is null ? $"N{index}" : $"N{index}.{decl.Namespace}";
            if (inner is not null) text.Append($"namespace {inner}\n{{\n");
            if (decl.Form == ClassForm.Nested) text.Append($"public partial class Outer{index}\n{{\n");

            var attributes = decl.Layers.Select(l => (Text: l.Render(rng), IsNetwork: false)).ToList();
            if (decl.HasNetwork) attributes.Insert(Math.Min(decl.NetworkPosition, attributes.Count), (decl.RenderNetwork(), true));
            TextSpan? network = null;
            var layers = new List<TextSpan>();
            for (int i = 0; i < attributes.Count;)
            {
                int inList = Math.Min(attributes.Count - i, rng.Next(4) == 0 ? rng.Next(2, 4) : 1);
                text.Append('[');
                for (int j = 0; j < inList; j++, i++)
                {
                    if (j > 0) text.Append(", ");
                    var span = new TextSpan(text.Length, attributes[i].Text.Length);
                    text.Append(attributes[i].Text);
                    if (attributes[i].IsNetwork) network = span;
                    else layers.Add(span);
                }
                text.Append(rng.Next(3) == 0 ? "] " : "]\n");
            }
            if (attributes.Count > 0 && text[^1] == ' ') text.Append('\n');

            string head = decl.Form switch
            {
                ClassForm.Internal => "internal partial class ",
                ClassForm.Sealed => "public sealed partial class ",
                ClassForm.NotPartial => "public class ",
                ClassForm.Static => "public static partial class ",
                ClassForm.Record => "public partial record ",
                ClassForm.FileLocal => "file partial class ",
                _ => "public partial class ",
            };
            text.Append(head);
            var identifier = new TextSpan(text.Length, className.Length);
            text.Append(className);
            text.Append(decl.Form switch
            {
                ClassForm.Generic => "<T> { }\n",
                ClassForm.Derived => " : FuzzBase { }\n",
                ClassForm.Sealed => " { public int Extra => 1; }\n",
                ClassForm.PrimaryConstructor => "(int width) { public int Width => width; }\n",
                _ => " { }\n",
            });
            if (decl.Form == ClassForm.Nested) text.Append("}\n");
            if (inner is not null) text.Append("}\n");
            string metadataName = string.Join(".", new[] { @namespace, inner, className }.OfType<string>()).Replace("@", "");
            locations.Add(new DeclLocation(TextSpan.FromBounds(start, text.Length), identifier, network, layers, metadataName));
        }
        text.Append("}\n");
        return (text.ToString(), locations);
    }
}

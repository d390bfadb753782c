using System;
using System.Collections.Immutable;
using Microsoft.CodeAnalysis.CSharp;

namespace Unrolled.Generator;

/// <summary>
/// The names the generated part of a network class declares, and how the emitter writes the user's names.
/// A class cannot have a member named like itself (CS0542), so the parser refuses a network class named like any
/// of these members (UNR0013). The emitter declares exactly these (GeneratorMemberNameTests compares them with what
/// it emits for networks of every layer kind); a new member must be added here.
/// </summary>
internal static class GeneratedNames
{
    /// <summary>The public members of every network (README, "What the generator adds").</summary>
    public static readonly ImmutableHashSet<string> Public = ImmutableHashSet.Create(StringComparer.Ordinal,
        "InputSize", "OutputSize", "ParameterCount", "Summary", "Loss", "Parameters", "Gradients", "Buffers", "Counters", "Tensors",
        "MaxDegreeOfParallelism", "Forward", "ComputeGradients", "TrainStep", "Layers");

    /// <summary>The private members every network has (or may have, depending on its layers), but the layer kernels.</summary>
    public static readonly ImmutableHashSet<string> Private = ImmutableHashSet.Create(StringComparer.Ordinal,
        // Constants.
        "BufferCount", "CounterCount", "WorkspaceSize", "MaxActivation", "MinSamplesPerChunk", "ActivationFloatsPerSample",
        "MaskFloatsPerSample", "BatchNormStats",
        // Fields.
        "_parameters", "_gradients", "_buffers", "_counters", "_seed", "_trainingSteps", "_maxDegreeOfParallelism", "_workspaces",
        "s_tensors", "_phase", "_batch", "_chunks", "_x", "_y", "_p", "_b", "_targets", "_labels", "_packed", "_pk", "_activations",
        "_gradA", "_gradB", "_masks", "_losses", "_stats", "_chunkGradients", "_chunkSums", "_trainingCapacity", "s_actPrefix",
        "s_actStride", "_gradSums", "s_layers",
        // Methods.
        "ChunkCount", "Workspace", "EnsureWorkspaces", "ChunkRange", "InferChunk", "EnsureTraining", "Act", "ActStride", "Grad",
        "CheckBatch", "Train", "Run");

    /// <summary>Every name above.</summary>
    public static readonly ImmutableHashSet<string> Members = Public.Union(Private);

    /// <summary>The prefix of a layer's kernels: L, its index and an underscore (L0_Forward, L3_Tile4x2x1_512, L2_InputGradient_Convolve …).</summary>
    public static string LayerPrefix(int index) => "L" + index.ToString(System.Globalization.CultureInfo.InvariantCulture) + "_";

    /// <summary>Is <paramref name="name"/> a name the generated class may declare: one of <see cref="Members"/>, or
    /// a layer kernel's (L, digits, an underscore, anything)?</summary>
    public static bool IsMember(string name)
    {
        if (Members.Contains(name)) return true;
        int i = 1;
        while (i < name.Length && name[i] is >= '0' and <= '9') i++;
        return name.Length > 0 && name[0] == 'L' && i > 1 && i < name.Length && name[i] == '_';
    }

    /// <summary>A name as a C# identifier: with '@' when it is a keyword, reserved (<c>class</c>) or contextual
    /// (<c>var</c>, <c>record</c>), so that it always names the user's class or namespace.</summary>
    public static string Identifier(string name) =>
        SyntaxFacts.GetKeywordKind(name) != SyntaxKind.None || SyntaxFacts.GetContextualKeywordKind(name) != SyntaxKind.None
            ? "@" + name
            : name;
}

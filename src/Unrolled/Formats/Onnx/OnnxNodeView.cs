using System;
using System.Linq;
using Unrolled.Formats.Onnx.Proto;

namespace Unrolled.Formats.Onnx;

/// <summary>Typed access to a node's attributes; a wrong attribute type is an import error naming the node.</summary>
internal sealed class OnnxNodeView
{
    private readonly Func<string, Exception> _fail;

    public OnnxNodeView(NodeProto node, Func<string, Exception> fail) { Node = node; _fail = fail; }

    public NodeProto Node { get; }

    public AttributeProto? Find(string name) => Node.Attribute.FirstOrDefault(a => a.Name == name);

    public bool Has(string name) => Find(name) is not null;

    private AttributeProto? Typed(string name, AttributeProto.Types.AttributeType type)
    {
        AttributeProto? a = Find(name);
        if (a is null) return null;
        // Old writers leave the type out; then the present field decides.
        if (a.Type != AttributeProto.Types.AttributeType.Undefined && a.Type != type)
            throw _fail($"attribute '{name}' is of type {a.Type}, expected {type}");
        return a;
    }

    public long Int(string name, long fallback) => Typed(name, AttributeProto.Types.AttributeType.Int)?.I ?? fallback;
    public long? IntOrNull(string name) => Typed(name, AttributeProto.Types.AttributeType.Int)?.I;
    public float Float(string name, float fallback) => Typed(name, AttributeProto.Types.AttributeType.Float)?.F ?? fallback;
    public float? FloatOrNull(string name) => Typed(name, AttributeProto.Types.AttributeType.Float)?.F;
    public long[]? Ints(string name) => Typed(name, AttributeProto.Types.AttributeType.Ints)?.Ints.ToArray();
    public float[] Floats(string name) => Typed(name, AttributeProto.Types.AttributeType.Floats)?.Floats.ToArray() ?? Array.Empty<float>();
    public string? String(string name) => Typed(name, AttributeProto.Types.AttributeType.String)?.S.ToStringUtf8();
    public TensorProto? Tensor(string name) => Typed(name, AttributeProto.Types.AttributeType.Tensor)?.T;

    /// <summary>Refuses any attribute not in <paramref name="known"/>, so that nothing is silently ignored.</summary>
    public void OnlyAttributes(params string[] known)
    {
        foreach (AttributeProto a in Node.Attribute)
            if (!known.Contains(a.Name)) throw _fail($"attribute '{a.Name}' is not supported");
    }
}

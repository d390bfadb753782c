using System.Collections.Immutable;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Simplification;
using Unrolled.Generator;
using Unrolled.Generator.Model;

namespace Unrolled.CodeFixes;

/// <summary>
/// UNR0005 (kernel or window larger than its padded input) and UNR0011 (the stride leaves input rows or
/// columns unread): sets <c>Padding = Padding.Same</c> on the Conv2D, MaxPool2D or AvgPool2D layer, adding the
/// named argument or replacing its value. Same padding pads the input until the windows cover it exactly
/// (output ceil(input / stride)), for any kernel and stride, so neither diagnostic can remain on that layer.
/// </summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(UseSamePaddingCodeFixProvider))]
public sealed class UseSamePaddingCodeFixProvider : CodeFixProvider
{
    /// <summary>The equivalence key of the fix, shared by every occurrence so that Fix All groups them.</summary>
    public const string EquivalenceKey = "Unrolled.UseSamePadding";

    private const string PaddingProperty = "Padding";

    /// <summary>The value of <c>Unrolled.Padding.Same</c>.</summary>
    private const int Same = int.MinValue;

    public override ImmutableArray<string> FixableDiagnosticIds { get; } =
        ImmutableArray.Create(Diagnostics.WindowTooLarge.Id, Diagnostics.StrideDropsInput.Id);

    public override FixAllProvider GetFixAllProvider() => WellKnownFixAllProviders.BatchFixer;

    public override async Task RegisterCodeFixesAsync(CodeFixContext context)
    {
        SyntaxNode? root = await context.Document.GetSyntaxRootAsync(context.CancellationToken).ConfigureAwait(false);
        SemanticModel? model = await context.Document.GetSemanticModelAsync(context.CancellationToken).ConfigureAwait(false);
        if (root is null || model is null) return;
        foreach (Diagnostic diagnostic in context.Diagnostics)
        {
            // The generator reports both diagnostics on the layer's attribute.
            if (root.FindNode(diagnostic.Location.SourceSpan) is not AttributeSyntax { ArgumentList: not null } attribute
                || attribute.Span != diagnostic.Location.SourceSpan
                || !HasWindow(attribute, model, context.CancellationToken)
                || IsSame(PaddingArgument(attribute), model, context.CancellationToken))
                continue;
            Document document = context.Document;
            context.RegisterCodeFix(
                CodeAction.Create("Use Padding.Same", ct => UseSameAsync(document, attribute, ct), EquivalenceKey),
                diagnostic);
        }
    }

    /// <summary>Is this one of our layer attributes that slides a window with a Padding option?</summary>
    private static bool HasWindow(AttributeSyntax attribute, SemanticModel model, CancellationToken ct)
        => model.GetSymbolInfo(attribute, ct).Symbol is IMethodSymbol { ContainingType: var type }
           && Parser.TryGetLayerKind(type, out LayerKind kind)
           && kind is LayerKind.Conv2D or LayerKind.MaxPool2D or LayerKind.AvgPool2D;

    private static AttributeArgumentSyntax? PaddingArgument(AttributeSyntax attribute)
        => attribute.ArgumentList?.Arguments.FirstOrDefault(a => a.NameEquals?.Name.Identifier.ValueText == PaddingProperty);

    private static bool IsSame(AttributeArgumentSyntax? padding, SemanticModel model, CancellationToken ct)
        => padding is not null && model.GetConstantValue(padding.Expression, ct) is { HasValue: true, Value: Same };

    private static async Task<Document> UseSameAsync(Document document, AttributeSyntax attribute, CancellationToken ct)
    {
        SyntaxNode? root = await document.GetSyntaxRootAsync(ct).ConfigureAwait(false);
        if (root is null) return document;

        // Fully qualified and marked for the simplifier, which shortens it to what the file's usings allow.
        ExpressionSyntax same = SyntaxFactory.ParseExpression("global::Unrolled.Padding.Same").WithAdditionalAnnotations(Simplifier.Annotation);
        AttributeArgumentListSyntax arguments = attribute.ArgumentList!; // every window layer has constructor arguments
        AttributeArgumentSyntax? padding = PaddingArgument(attribute);
        if (padding is not null)
        {
            arguments = arguments.ReplaceNode(padding, padding.WithExpression(same.WithTriviaFrom(padding.Expression)));
        }
        else
        {
            AttributeArgumentSyntax argument = SyntaxFactory.AttributeArgument(
                SyntaxFactory.NameEquals(Tokens.SpaceAfter(PaddingProperty), Tokens.SpaceAfter(SyntaxKind.EqualsToken)),
                nameColon: null,
                same);
            var separators = arguments.Arguments.GetSeparators().ToList();
            if (arguments.Arguments.Count > 0)
                separators.Add(Tokens.SpaceAfter(SyntaxKind.CommaToken));
            arguments = arguments.WithArguments(SyntaxFactory.SeparatedList(arguments.Arguments.Add(argument), separators));
        }
        return document.WithSyntaxRoot(root.ReplaceNode(attribute, attribute.WithArgumentList(arguments)));
    }
}

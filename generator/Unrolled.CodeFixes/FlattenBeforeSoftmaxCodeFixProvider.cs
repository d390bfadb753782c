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
/// UNR0006 (Softmax on an image): inserts a Flatten layer just before the Softmax layer, which then normalises
/// over every value of the image, one of the two remedies the diagnostic names (the other, a Dense layer, needs a
/// unit count only the user knows). In an attribute list of its own the Softmax gets a <c>[Flatten]</c> list
/// before it, laid out as the lists around it are; in a shared list, a <c>Flatten</c> entry before it.
/// </summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(FlattenBeforeSoftmaxCodeFixProvider))]
public sealed class FlattenBeforeSoftmaxCodeFixProvider : CodeFixProvider
{
    /// <summary>The equivalence key of the fix, shared by every occurrence so that Fix All groups them.</summary>
    public const string EquivalenceKey = "Unrolled.FlattenBeforeSoftmax";

    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create(Diagnostics.SoftmaxOn3D.Id);

    public override FixAllProvider GetFixAllProvider() => WellKnownFixAllProviders.BatchFixer;

    public override async Task RegisterCodeFixesAsync(CodeFixContext context)
    {
        SyntaxNode? root = await context.Document.GetSyntaxRootAsync(context.CancellationToken).ConfigureAwait(false);
        SemanticModel? model = await context.Document.GetSemanticModelAsync(context.CancellationToken).ConfigureAwait(false);
        if (root is null || model is null) return;
        foreach (Diagnostic diagnostic in context.Diagnostics)
        {
            // The generator reports UNR0006 on the Softmax attribute.
            if (root.FindNode(diagnostic.Location.SourceSpan) is not AttributeSyntax attribute
                || attribute.Span != diagnostic.Location.SourceSpan
                || attribute.Parent is not AttributeListSyntax { Parent: TypeDeclarationSyntax }
                || model.GetSymbolInfo(attribute, context.CancellationToken).Symbol is not IMethodSymbol { ContainingType: var type }
                || !Parser.TryGetLayerKind(type, out LayerKind kind) || kind != LayerKind.Softmax)
                continue;
            Document document = context.Document;
            context.RegisterCodeFix(
                CodeAction.Create("Insert [Flatten] before the Softmax layer", ct => InsertFlattenAsync(document, attribute, ct), EquivalenceKey),
                diagnostic);
        }
    }

    private static async Task<Document> InsertFlattenAsync(Document document, AttributeSyntax softmax, CancellationToken ct)
    {
        SyntaxNode? root = await document.GetSyntaxRootAsync(ct).ConfigureAwait(false);
        if (root is null) return document;

        // Fully qualified and marked for the simplifier, which shortens it to what the file's usings allow.
        AttributeSyntax flatten = SyntaxFactory.Attribute(SyntaxFactory.ParseName("global::Unrolled.Flatten"))
            .WithAdditionalAnnotations(Simplifier.Annotation);
        var list = (AttributeListSyntax)softmax.Parent!;
        var declaration = (TypeDeclarationSyntax)list.Parent!;

        if (list.Attributes.Count > 1)
        {
            // [Conv2D(2, 3), Softmax] → [Conv2D(2, 3), Flatten, Softmax]
            int index = list.Attributes.IndexOf(softmax);
            var separators = list.Attributes.GetSeparators().ToList();
            separators.Insert(index, Tokens.SpaceAfter(SyntaxKind.CommaToken));
            var attributes = list.Attributes.Insert(index, flatten.WithLeadingTrivia(softmax.GetLeadingTrivia()));
            AttributeListSyntax widened = list.WithAttributes(SyntaxFactory.SeparatedList(attributes, separators));
            return document.WithSyntaxRoot(root.ReplaceNode(list, widened));
        }

        // [Softmax] → [Flatten] [Softmax], on one line or on two as the list itself begins.
        SyntaxTriviaList leading = list.GetLeadingTrivia();
        SyntaxTrivia newLine = list.GetFirstToken().GetPreviousToken().TrailingTrivia.Concat(leading)
            .FirstOrDefault(t => t.IsKind(SyntaxKind.EndOfLineTrivia));
        SyntaxTriviaList indentation = SyntaxFactory.TriviaList(leading.Reverse().TakeWhile(t => t.IsKind(SyntaxKind.WhitespaceTrivia)).Reverse());
        AttributeListSyntax flattenList = SyntaxFactory.AttributeList(
                Tokens.Token(SyntaxKind.OpenBracketToken).WithLeadingTrivia(leading),
                target: null,
                SyntaxFactory.SingletonSeparatedList(flatten),
                Tokens.Token(SyntaxKind.CloseBracketToken).WithTrailingTrivia(newLine.IsKind(SyntaxKind.EndOfLineTrivia) ? newLine : SyntaxFactory.Space));
        var lists = declaration.AttributeLists;
        int at = lists.IndexOf(list);
        lists = lists.Replace(list, list.WithLeadingTrivia(indentation)).Insert(at, flattenList);
        return document.WithSyntaxRoot(root.ReplaceNode(declaration, declaration.WithAttributeLists(lists)));
    }
}
